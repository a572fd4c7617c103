#!/usr/bin/env bash
# `make profile-matrix`: what each release-profile setting buys. Builds customer-token and the JWT
# criterion benchmark once per variant (cargo's defaults, a baseline, and one setting
# changed at a time from the baseline: opt-level 3, fat LTO, one codegen unit, panic=abort),
# and writes BENCHMARKS-release-profile.md: stripped binary and
# zip size, cold start through a local Lambda Runtime API (moto for secrets and the table) and
# the time of one session-JWT verification. Host target (not zig): sizes are within a few KiB of
# `make package`'s. About 45 minutes on 2 cores; nothing else should run meanwhile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=$(bash tools/setup.sh)
target="$root/target/profile-matrix"
out="$target/out"
mkdir -p "$out" .tools
cargo build --locked -p bench --bin bench
read -r moto_pid moto_url < <(bash tools/moto.sh "$bin" .tools/moto-matrix.log)
[ -n "${moto_url:-}" ] || { echo "moto did not start" >&2; exit 1; }
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT

# name | opt-level | lto | codegen-units | panic
variants=(
  "baseline|3|fat|1|abort"
  "cargo-defaults|3|false|16|unwind"
  "opt-level-s|s|fat|1|abort"
  "opt-level-z|z|fat|1|abort"
  "lto-thin|3|thin|1|abort"
  "codegen-units-16|3|fat|16|abort"
  "panic-unwind|3|fat|1|unwind"
)
# Waits until the machine is idle (under 10% of its CPU busy over 3 s): a build or a test run
# beside the measurement would skew it.
quiet() {
  while :; do
    read -r _ u1 n1 s1 i1 w1 q1 sq1 _ < /proc/stat
    sleep 3
    read -r _ u2 n2 s2 i2 w2 q2 sq2 _ < /proc/stat
    busy=$(( (u2 + n2 + s2 + q2 + sq2) - (u1 + n1 + s1 + q1 + sq1) ))
    idle=$(( (i2 + w2) - (i1 + w1) ))
    [ $(( busy * 10 )) -lt $(( busy + idle )) ] && return
  done
}
# Criterion writes its estimates under CARGO_TARGET_DIR (a --target-dir flag it does not see).
export CARGO_TARGET_DIR="$target"
rows=""
for v in "${variants[@]}"; do
  IFS='|' read -r name opt lto cgu panic <<<"$v"
  echo "==> $name (opt-level=$opt lto=$lto codegen-units=$cgu panic=$panic)" >&2
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt CARGO_PROFILE_RELEASE_LTO=$lto \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=$cgu CARGO_PROFILE_RELEASE_PANIC=$panic
  cargo build --locked --release -p customer-token
  mkdir -p "$out/$name/customer-token"
  cp "$target/release/customer-token" "$out/$name/customer-token/bootstrap"
  size=$(stat -c %s "$out/$name/customer-token/bootstrap")
  zip=$("$bin/python" - "$out/$name/customer-token/bootstrap" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z, open(sys.argv[1], "rb") as f:
    z.writestr("bootstrap", f.read(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
print(len(buf.getvalue()))
PY
)
  cargo bench --locked -p shared --features signer --bench jwt --no-run
  quiet
  cold=$(BENCH_COLD_RUNS=20 MOTO_URL=$moto_url BOOTSTRAP_DIR="$out/$name" RUST_LOG=error \
    target/debug/bench cold | awk '$1=="customer-token"{print $3}')
  rm -rf "$target/criterion/jwt_verify"
  quiet
  cargo bench --locked -p shared --features signer --bench jwt -- \
    --warm-up-time 2 --measurement-time 5 jwt_verify >&2
  verify=$("$bin/python" -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["median"]["point_estimate"]/1000))' \
    "$target/criterion/jwt_verify/new/estimates.json")
  rows+=$(printf '| %s | `%s` | `%s` | %s | `%s` | %.2f MiB | %.2f MiB | %s ms | %s µs |' \
    "$name" "$opt" "$lto" "$cgu" "$panic" \
    "$(awk -v b="$size" 'BEGIN{print b/1048576}')" "$(awk -v b="$zip" 'BEGIN{print b/1048576}')" "$cold" "$verify")$'\n'
done
unset CARGO_PROFILE_RELEASE_OPT_LEVEL CARGO_PROFILE_RELEASE_LTO CARGO_PROFILE_RELEASE_CODEGEN_UNITS \
  CARGO_PROFILE_RELEASE_PANIC CARGO_TARGET_DIR

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
  echo "# What each release-profile setting buys"
  echo
  echo "Written by \`make profile-matrix\` (\`tools/profile_matrix.sh\`) on $(nproc) cores ($cpu), $(date -u +%Y-%m-%d)."
  echo "(The JWT benchmark ignores \`panic\`: cargo builds benches with unwinding.)"
  echo "customer-token built for the host target with each variant (strip = true in all), measured only while no"
  echo "compiler runs. Cold start: median of 20 spawns to the first"
  echo "response through a local Lambda Runtime API, secrets and table in moto (the Secrets Manager wait included)."
  echo "JWT verify: criterion median of \`SessionVerifier::verify\` with the keys cached (the CPU-heavy step of"
  echo "customer-token and totp-stepup)."
  echo
  echo "The release profile in Cargo.toml is the opt-level-s row: see the notes in BENCHMARKS.md."
  echo
  echo "| variant | opt-level | lto | codegen-units | panic | binary | zip | cold start | JWT verify |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
} > BENCHMARKS-release-profile.md
cat BENCHMARKS-release-profile.md
