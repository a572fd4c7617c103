#!/usr/bin/env bash
# Bounded fuzzing (part of `make test`, and `make fuzz`): installs the pinned cargo-fuzz into
# .tools/cargo when missing, builds the targets of fuzz/ with libFuzzer's coverage
# instrumentation (no sanitizer: our crates forbid unsafe code) and runs each for FUZZ_SECONDS
# (default 20) from the committed seeds plus the corpus kept in fuzz/corpus/. A crash fails the run
# and leaves its input in fuzz/artifacts/<target>/. cargo-fuzz needs nightly flags; the stable
# toolchain accepts them with RUSTC_BOOTSTRAP=1, set here only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=0.13.2
if ! .tools/cargo/bin/cargo-fuzz --version 2>/dev/null | grep -q "$version"; then
  echo "fuzz: installing cargo-fuzz $version into .tools/cargo" >&2
  cargo install --quiet --locked cargo-fuzz --version "$version" --root .tools/cargo >&2
fi
export PATH="$root/.tools/cargo/bin:$PATH" RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-20}
cargo fuzz build -s none
for target in $(cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  out=$(cargo fuzz run -s none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -seed=1 2>&1) || { echo "$out" | tail -n 40 >&2; echo "fuzz: $target crashed" >&2; exit 1; }
  echo "fuzz: $target: $(echo "$out" | grep -o 'Done [0-9]* runs in [0-9]* second(s)'), no crash"
done
