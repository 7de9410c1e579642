#!/usr/bin/env bash
# Runs a command with a live AWS emulator behind AWS_ENDPOINT_URL.
#
#   scripts/with-emulator.sh cargo test --workspace
#
# - If AWS_ENDPOINT_URL already answers, it is used as is (LocalStack, a shared moto...).
# - Else moto server (pinned in scripts/requirements-emulator.txt) is installed into .venv/
#   and started on 127.0.0.1:${SWITCHYARD_EMULATOR_PORT:-4566}; it is stopped on exit.
#   A moto already listening on that port is reused and left running.
# - moto only: ECS tasks are pinned to RUNNING (no state advance per DescribeTasks), and
#   the default VPC's subnets and security group are exported for RunTask.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
port="${SWITCHYARD_EMULATOR_PORT:-4566}"
started_pid=""

log() { echo "[emulator] $*" >&2; }

answers() { curl -s -o /dev/null -m 2 "$1" ; }

ensure_venv() {
  local want="$root/scripts/requirements-emulator.txt" stamp="$venv/.requirements"
  if [ -x "$venv/bin/python" ] && cmp -s "$want" "$stamp"; then return; fi
  log "installing $(grep -v '^#' "$want" | tr '\n' ' ')into .venv/"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$want"
  cp "$want" "$stamp"
}

cleanup() {
  if [ -n "$started_pid" ]; then
    kill "$started_pid" 2>/dev/null || true
    wait "$started_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"

if [ -n "${AWS_ENDPOINT_URL:-}" ] && answers "$AWS_ENDPOINT_URL"; then
  log "using $AWS_ENDPOINT_URL"
else
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  ensure_venv
  if answers "$AWS_ENDPOINT_URL/moto-api/"; then
    log "reusing moto already on port $port"
  else
    mkdir -p "$root/.switchyard"
    "$venv/bin/python" "$root/scripts/moto_serve.py" 127.0.0.1 "$port" >"$root/.switchyard/moto.log" 2>&1 &
    started_pid=$!
    export SWITCHYARD_EMULATOR_PID="$started_pid"   # for `make bench` (peak RSS)
    for _ in $(seq 1 150); do
      answers "$AWS_ENDPOINT_URL/moto-api/" && break
      kill -0 "$started_pid" 2>/dev/null || { cat "$root/.switchyard/moto.log" >&2; exit 1; }
      sleep 0.2
    done
    answers "$AWS_ENDPOINT_URL/moto-api/" || { log "moto did not answer on $port"; exit 1; }
    log "started moto on $AWS_ENDPOINT_URL (pid $started_pid)"
  fi
fi

if answers "$AWS_ENDPOINT_URL/moto-api/"; then
  curl -s -m 5 -X POST "$AWS_ENDPOINT_URL/moto-api/state-manager/set-transition" \
    -d '{"model_name":"ecs::task","transition":{"progression":"manual","times":1000000}}' >/dev/null
  if [ -z "${SWITCHYARD_SUBNETS:-}" ] || [ -z "${SWITCHYARD_SECURITY_GROUPS:-}" ]; then
    read -r subnets sgs < <("$venv/bin/python" - <<'PY'
import boto3, os
ec2 = boto3.client("ec2", region_name=os.environ["AWS_REGION"])
vpc = [v for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")][0]["VpcId"]
subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
sgs = [g["GroupId"] for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]]
print(",".join(subnets[:2]), ",".join(sgs[:1]))
PY
)
    export SWITCHYARD_SUBNETS="${SWITCHYARD_SUBNETS:-$subnets}"
    export SWITCHYARD_SECURITY_GROUPS="${SWITCHYARD_SECURITY_GROUPS:-$sgs}"
  fi
fi

set +e
"$@"
rc=$?
exit $rc
