#!/usr/bin/env bash
# `make bench`: builds the Lambda packages, starts moto, runs the JWT criterion benchmark, and
# runs the `bench report` measurements from a release build with symbols (`--profile
# profiling`), rewriting BENCHMARKS.md and its plots in benchmarks/. The CPU-per-exchange runs
# are profiled with perf where perf works. About 35 minutes on 2 cores: release builds, and the
# 100,000-request soak through moto (BENCH_SOAK_REQUESTS=10000 for a quicker look).
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
cargo build --locked --profile profiling -p bench --bin bench -p local-stack --bin local-stack -p customer-token --bin customer-token
perf_dir=""
if command -v perf >/dev/null 2>&1 && perf record -o .tools/perf-probe.data -- true >/dev/null 2>&1; then
  perf_dir="$root/.tools/perf"
  mkdir -p "$perf_dir"
else
  echo "perf is not usable here: the report has no profiles" >&2
fi
env MOTO_URL=$moto_url MOTO_PID=$moto_pid BOOTSTRAP_DIR="$root/target/lambda" PROFILING_DIR="$root/target/profiling" \
  ${perf_dir:+BENCH_PERF_DIR="$perf_dir"} RUST_LOG=error target/profiling/bench report
