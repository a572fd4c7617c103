#!/usr/bin/env bash
# `make bench`: builds the Lambda packages, starts moto, runs the JWT criterion benchmark, profiles
# the one-core throughput run with perf (where perf works), and runs the `bench report`
# measurements from a release build with symbols, rewriting BENCHMARKS.md. About 15 minutes on
# 2 cores, most of it release builds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=$(bash tools/setup.sh)
bash tools/package.sh
mkdir -p .tools
read -r moto_pid moto_url < <(bash tools/moto.sh "$bin" .tools/moto-bench.log)
[ -n "${moto_url:-}" ] || { echo "moto did not start" >&2; exit 1; }
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
cargo bench --locked -p shared --features signer --bench jwt
cargo build --locked --profile profiling -p bench --bin bench
exe="$root/target/profiling/bench"
profile=""
if command -v perf >/dev/null 2>&1 && perf record -o .tools/perf-probe.data -- true >/dev/null 2>&1; then
  RUST_LOG=error perf record -F 999 -g -o .tools/perf.data -- "$exe" throughput --seconds 5
  perf report -i .tools/perf.data --stdio --no-children -g none --sort symbol --percent-limit 1.5 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | head -n 30 | sed 's/ *$//' > .tools/profile.txt
  profile="$root/.tools/profile.txt"
else
  echo "perf is not usable here: the report has no profile" >&2
fi
MOTO_URL=$moto_url BOOTSTRAP_DIR="$root/target/lambda" BENCH_PROFILE="$profile" RUST_LOG=error "$exe" report
