#!/usr/bin/env bash
# Starts moto's server (DynamoDB + Secrets Manager, the real AWS wire protocol; requests applied
# one at a time, as DynamoDB's conditional writes are atomic: see moto_server.py) on a free
# loopback port and waits until it answers. Prints "<pid> <url>". Stop it with: kill <pid>.
set -euo pipefail
bin=$1
log=${2:-/dev/null}
port=$("$bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_PORT=$port "$bin/python" "$(dirname "$0")/moto_server.py" 127.0.0.1 "$port" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if "$bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
    echo "$pid http://127.0.0.1:$port"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || { echo "moto_server exited; see $log" >&2; exit 1; }
  sleep 0.2
done
kill "$pid" 2>/dev/null || true
echo "moto_server did not start within 20 s; see $log" >&2
exit 1
