#!/usr/bin/env bash
# `make bench`: builds the Lambda packages, starts moto, runs the JWT criterion benchmark and the
# `local-stack bench` measurements (release build), and rewrites BENCHMARKS.md. Takes about 15
# minutes on 2 cores, most of it release builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=$(bash local/tools/setup.sh)
bash local/tools/package.sh
mkdir -p .tools
read -r moto_pid moto_url < <(bash local/tools/moto.sh "$bin" .tools/moto-bench.log)
[ -n "${moto_url:-}" ] || { echo "moto did not start" >&2; exit 1; }
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
cargo bench --locked -p shared --features signer --bench jwt
MOTO_URL=$moto_url BOOTSTRAP_DIR="$root/target/lambda" RUST_LOG=error \
  cargo run --locked --release -p local-stack --bin local-stack -- bench
