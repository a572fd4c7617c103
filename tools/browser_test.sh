#!/usr/bin/env bash
# The browser test of the demo page (part of `make test`): installs Debian's Chromium when it is
# missing and the pinned playwright-core/jsqr from tests/browser/package-lock.json, starts the
# local stack (its embedded default: sandboxes in process, free ports), walks the demo page in
# headless Chromium and stops the stack. Screenshots: target/browser/.
# Needs target/debug/local-stack (cargo build --workspace --bins).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -x /usr/bin/chromium ]; then
  echo "browser test: installing Debian's chromium" >&2
  as_root=""
  [ "$(id -u)" = 0 ] || as_root=sudo
  $as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium >&2
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >&2)

artifacts="$root/target/browser"
rm -rf "$artifacts"
mkdir -p "$artifacts"
log="$artifacts/local-stack.log"
PORT=0 STYTCH_SANDBOX_PORT=0 UNIT_SANDBOX_PORT=0 LOCAL_STATE_DIR="$artifacts/local" \
  target/debug/local-stack serve >"$log" 2>&1 &
stack=$!
trap 'kill "$stack" 2>/dev/null || true' EXIT
base=""
for _ in $(seq 1 100); do
  base=$(grep -o 'local stack on http://[0-9.:]*' "$log" | head -n 1 | sed 's/local stack on //' || true)
  [ -n "$base" ] && break
  kill -0 "$stack" 2>/dev/null || { cat "$log" >&2; echo "the local stack did not start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { cat "$log" >&2; echo "the local stack did not say where it listens" >&2; exit 1; }
node tests/browser/demo_flow.mjs "$base" "$artifacts"
