#!/usr/bin/env bash
# Builds the three Lambda functions for Lambda's glibc (2.34, provided.al2023) with cargo-lambda
# (zig from the pinned tools venv), checks that no bootstrap needs a newer glibc symbol, zips
# each one (bootstrap at the root, as Lambda wants) and reports the sizes.
# Output: target/lambda/<function>/bootstrap (SAM's CodeUri) and target/lambda/<function>.zip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=$(bash tools/setup.sh)
export PATH="$bin:$PATH"
arch=${ARCH:-x86_64}
case "$arch" in
  x86_64) target=x86_64-unknown-linux-gnu.2.34 ;;
  arm64) target=aarch64-unknown-linux-gnu.2.34 ;;
  *) echo "ARCH must be x86_64 or arm64" >&2; exit 2 ;;
esac
functions=(signup-webhook totp-stepup customer-token)
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done
cargo lambda build --release --target "$target" "${packages[@]}"

max_glibc=2.34
printf '%-16s %12s %12s %s\n' function bootstrap zip newest-glibc
for f in "${functions[@]}"; do
  boot="target/lambda/$f/bootstrap"
  [ -x "$boot" ] || { echo "$boot was not built" >&2; exit 1; }
  newest=$(objdump -T "$boot" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
  if [ "$(printf '%s\n%s\n' "$newest" "$max_glibc" | sort -V | tail -n 1)" != "$max_glibc" ]; then
    echo "$boot needs GLIBC_$newest, newer than Lambda's $max_glibc" >&2
    exit 1
  fi
  "$bin/python" - "$boot" "target/lambda/$f.zip" <<'PY'
import sys, zipfile
boot, out = sys.argv[1], sys.argv[2]
info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
info.external_attr = 0o755 << 16
info.compress_type = zipfile.ZIP_DEFLATED
with zipfile.ZipFile(out, "w") as z, open(boot, "rb") as f:
    z.writestr(info, f.read(), compresslevel=9)
PY
  printf '%-16s %12s %12s %s\n' "$f" "$(stat -c %s "$boot")" "$(stat -c %s "target/lambda/$f.zip")" "GLIBC_$newest"
done
