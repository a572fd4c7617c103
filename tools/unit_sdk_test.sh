#!/usr/bin/env bash
# The Unit sandbox against Unit's official Node SDK (part of `make test`): installs the pinned
# @unit-finance/unit-node-sdk from tests/unit-sdk/package-lock.json, starts the local stack (its
# embedded default: sandboxes in process, free ports, a state dir of its own), runs
# tests/unit-sdk/conformance.mjs against its Unit and Stytch sandboxes and stops the stack.
# Needs target/debug/local-stack (cargo build --workspace --bins). Report: target/conformance/unit.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
(cd tests/unit-sdk && npm ci --no-audit --no-fund --loglevel=error >&2)

state="$root/target/unit-sdk"
rm -rf "$state"
mkdir -p "$state" target/conformance
log="$state/local-stack.log"
PORT=0 STYTCH_SANDBOX_PORT=0 UNIT_SANDBOX_PORT=0 LOCAL_STATE_DIR="$state/local" \
  target/debug/local-stack serve >"$log" 2>&1 &
stack=$!
trap 'kill "$stack" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q '^Unit: ' "$log" && grep -q 'org token' "$log" && break
  kill -0 "$stack" 2>/dev/null || { cat "$log" >&2; echo "the local stack did not start" >&2; exit 1; }
  sleep 0.1
done
field() { grep -m1 "$1" "$log" | sed -E "s/$2/\\1/"; }
UNIT_API_URL=$(field '^Unit: ' '^Unit: +([^ ]+).*')
STYTCH_API_URL=$(field '^Stytch: ' '^Stytch: +([^ ]+).*')
STYTCH_PROJECT_ID=$(field '^Stytch: ' '.* project ([^ ]+)$')
UNIT_API_TOKEN=$(field 'org token' '.*org token ([^ ]+)$')
secrets="$state/local/secrets.json"
read_secret() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1]))[process.argv[2]])' "$secrets" "$1"; }
STYTCH_SECRET=$(read_secret stytch_secret)
UNIT_WEBHOOK_TOKEN=$(read_secret unit_webhook_token)
export UNIT_API_URL UNIT_API_TOKEN UNIT_WEBHOOK_TOKEN STYTCH_API_URL STYTCH_PROJECT_ID STYTCH_SECRET
REPORT="$root/target/conformance/unit.json" node tests/unit-sdk/conformance.mjs
