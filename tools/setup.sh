#!/usr/bin/env bash
# Creates (once) and updates the pinned Python tools venv in .tools/venv: moto[server] for
# DynamoDB and Secrets Manager, cfn-lint for template.yaml. Prints the venv's bin directory.
# `setup.sh openapi`: the OpenAPI checker's venv instead (.tools/openapi-venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.tools/venv"
lock="$root/tools/requirements.txt"
if [ "${1:-}" = openapi ]; then
  venv="$root/.tools/openapi-venv"
  lock="$root/tools/openapi-requirements.txt"
fi
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing pinned test tools into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$lock" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin"
