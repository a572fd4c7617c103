#!/usr/bin/env bash
# Derives template-managed-instances.yaml (Lambda Managed Instances, for a new stack; see
# docs/managed-instances.md) from template.yaml with tools/managed-instances.patch. The variant
# is not committed: it is made from the template it deploys, and `make test` derives and checks
# it on every run, so a change to template.yaml that the patch no longer fits turns the suite red.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-template-managed-instances.yaml}
if ! patch --quiet --force -o "$out" template.yaml < tools/managed-instances.patch; then
  rm -f "$out" "$out.rej" "$out.orig"
  echo "tools/managed-instances.patch no longer applies to template.yaml: update it (docs/managed-instances.md)" >&2
  exit 1
fi
echo "$out"
