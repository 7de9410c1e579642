#!/usr/bin/env bash
# Runs a command with a Switchyard stack deployed into the emulator's CloudFormation from
# infra/template.yaml (translated offline), its outputs exported as SWITCHYARD_STACK_*.
# Run inside scripts/with-emulator.sh. Each run deploys a uniquely named stack.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$("$root/scripts/infra-venv.sh")"
id="$(date +%s%N | tail -c 9)"
exports="$("$bin/python" "$root/scripts/stack_emulator.py" "sy-$id" "s$id" "${SWITCHYARD_SUBNETS:-}" "${SWITCHYARD_SECURITY_GROUPS:-}")"
eval "$exports"
echo "[stack] sy-$id deployed: table $SWITCHYARD_STACK_TABLENAME, prefix $SWITCHYARD_STACK_QUEUEPREFIX" >&2
exec "$@"
