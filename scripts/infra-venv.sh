#!/usr/bin/env bash
# Creates .venv-infra/ with the pinned deploy tools (sam, cfn-lint, cargo-lambda + zig)
# and prints its bin directory. Kept apart from .venv/ (the emulator) so pins never clash.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-infra"
want="$root/scripts/requirements-infra.txt"
if ! { [ -x "$venv/bin/sam" ] && cmp -s "$want" "$venv/.requirements"; }; then
  echo "[infra] installing $(grep -v '^#' "$want" | tr '\n' ' ')into .venv-infra/" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$want" >&2
  cp "$want" "$venv/.requirements"
fi
echo "$venv/bin"
