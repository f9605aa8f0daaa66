#!/usr/bin/env bash
# Smoke test of the compose stack on a machine with Docker: builds and starts it with the `dev`
# profile in a throw-away project, waits for every service's /ready, files the streetlamp appeal
# (the demo story, as `make run` files it) as 城中社区's grid worker, and reads its timeline until
# dispatch's order is on it. Exits non-zero on any failure; always removes the project (and its
# volumes) unless KEEP=1.
#
#   deploy/smoke.sh                 # from anywhere; needs docker compose v2, curl and python3
#   SMOKE_TIMEOUT=600 deploy/smoke.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=${SMOKE_PROJECT:-jiesu-smoke}
timeout_s=${SMOKE_TIMEOUT:-420}  # the first build downloads images and dependencies
env_file=$(mktemp)
compose=(docker compose -p "$project" -f "$here/docker-compose.yml" --env-file "$env_file" --profile dev)

cleanup() {
  status=$?
  if [[ $status -ne 0 ]]; then
    echo "smoke: FAILED ($status); the services' last log lines:" >&2
    "${compose[@]}" logs --tail 40 >&2 || true
  fi
  if [[ "${KEEP:-0}" != 1 ]]; then
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  rm -f "$env_file"
  exit "$status"
}
trap cleanup EXIT

say() { printf 'smoke: %s\n' "$*"; }

# One HTTP call with a bounded time; fails (non-zero) on a non-2xx answer.
call() { curl --silent --show-error --fail --max-time 10 "$@"; }

# Reads one field of the JSON on stdin: json_field case_id
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

"$here/dev-env.sh" >"$env_file"
say "building and starting project $project (dev profile)"
timeout "$timeout_s" "${compose[@]}" up --build --detach

# Each service's published port (127.0.0.1 only, deploy/docker-compose.yml).
ports=(8001 8002 8003 8004 8005 8009 8006 8008 8007 8090)
deadline=$((SECONDS + timeout_s))
for port in "${ports[@]}"; do
  until call --output /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      say "port $port not ready after ${timeout_s}s"
      exit 1
    fi
    sleep 2
  done
  say "ready: 127.0.0.1:$port"
done

# The grid worker signs in at the development issuer (the console does the same); the
# services trust the X-Actor-* headers in this profile, the token rides along.
token=$(call -H 'Content-Type: application/json' -d '{"user": "demo-grid-worker-cz"}' \
  http://127.0.0.1:8007/token | json_field access_token)
grid=(-H "Authorization: Bearer $token" -H 'X-Actor-Id: demo-grid-worker-cz'
  -H 'X-Actor-Role: grid_worker' -H 'X-Actor-Unit: LB-XC-CG-CZ-G01')
auditor=(-H 'X-Actor-Id: demo-auditor' -H 'X-Actor-Role: auditor' -H 'X-Actor-Unit: LB')

appeal='{
  "title": "西宁街一排路灯不亮",
  "description": "城中社区西宁街西门至土司练兵场一段的一排路灯一直不亮，晚上出行不安全。（数字平安忻城：网格员上报）",
  "channel": "grid",
  "contact": {"name": "网格员小潘", "phone": "13800000001"},
  "location": {"address": "忻城县城关镇城中社区西宁街"}
}'
filed=$(call "${grid[@]}" -H 'Content-Type: application/json' -H "Idempotency-Key: smoke-streetlamp-$$" \
  -d "$appeal" http://127.0.0.1:8001/api/v1/appeals)
case_id=$(json_field case_id <<<"$filed")
say "filed $(json_field tracking_no <<<"$filed") (case $case_id)"

# The timeline is intake's; dispatch's order (case.dispatched) appears once intake has read it
# from the topic: the appeal went through the broker, dispatch and back.
deadline=$((SECONDS + 120))
while :; do
  types=$(call "${auditor[@]}" "http://127.0.0.1:8001/api/v1/appeals/$case_id" |
    python3 -c 'import json, sys; print(" ".join(e["type"] for e in json.load(sys.stdin)["timeline"]))')
  if [[ " $types " == *" case.dispatched "* ]]; then
    say "timeline: $types"
    break
  fi
  if ((SECONDS > deadline)); then
    say "no case.dispatched on the timeline after 120s: ${types:-empty}"
    exit 1
  fi
  sleep 2
done
say "OK"
