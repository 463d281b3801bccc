#!/usr/bin/env bash
# The offline demo: the canonical sample alarm through the alarm router and the first-response
# state machine, four times: as it is (the restart works and the alarm itself returns to OK a
# minute later, on the virtual clock), with the breaker forced open and with a restart that does
# not bring the service back (both forced with mocks), and with an alarm that keeps firing after a
# restart that did work. After each, the alarm's OK is routed too, closing its incident group.
# Expects the emulator running and target/debug/replay built (make demo does both).
set -euo pipefail
cd "$(dirname "$0")/.."
replay=target/debug/replay
mocks=statemachines/mocks/first-response.json
failed=0
# Each scenario is a new ALARM and OK of the sample alarm, an hour after the one before (05:02,
# 06:02, ...): the router applies an alarm's transitions in their own order, so the same ALARM sent
# again after its OK would rightly change nothing.
scratch=.local/demo
mkdir -p "$scratch"
# It starts from an empty emulator (moto's own reset, as replay history does): what an earlier run
# left there would be newer than these events.
python3 -c 'import os, urllib.request as u; u.urlopen(u.Request(os.environ["AWS_ENDPOINT_URL"].rstrip("/") + "/moto-api/reset", method="POST"))'
printf 'emptied the emulator at %s\n' "$AWS_ENDPOINT_URL"
hour=4

scenario() {
  local title=$1 expected=$2; shift 2
  hour=$((hour + 1))
  event=$scratch/metric-alarm-$hour.json
  ok=$scratch/metric-ok-$hour.json
  sed "s/2026-11-20T04:/2026-11-20T$(printf %02d "$hour"):/g" events/alarm-router/metric-alarm.json >"$event"
  sed "s/2026-11-20T04:/2026-11-20T$(printf %02d "$hour"):/g" events/alarm-router/metric-ok.json >"$ok"
  printf '\n\033[1m== %s\033[0m\n$ replay event %s %s\n' "$title" "$event" "$*"
  local result
  result=$("$replay" event "$event" "$@") || true
  printf '%s\n' "$result"
  if grep -q "\"status\":\"$expected\"" <<<"$result"; then
    printf '\033[32m-> %s, as expected\033[0m\n' "$expected"
  else
    printf '\033[31m-> expected %s\033[0m\n' "$expected"
    failed=1
  fi
  # The alarm clears: its OK reaches the router, which resolves the alarm's group (web-nginx groups
  # its alarms) with one recovery notice, so the next scenario starts a new problem.
  printf '$ replay event %s --quiet\n' "$ok"
  result=$("$replay" event "$ok" --quiet) || true
  printf '%s\n' "$result"
  if ! grep -q '"did":"resolved"' <<<"$result"; then
    printf '\033[31m-> expected the OK to resolve the group\033[0m\n'
    failed=1
  fi
}

scenario "1. The restart works and the alarm returns to OK: nobody is woken" SUCCEEDED
scenario "2. The circuit breaker is open: humans are paged, nothing is restarted" FAILED \
  --mocks "$mocks" --test-case BreakerOpen
scenario "3. The restart does not bring nginx back: humans are paged with the evidence" FAILED \
  --mocks "$mocks" --test-case VerificationFailed
scenario "4. nginx restarted and active, but the alarm still fires: humans are paged" FAILED \
  --alarm-stays
exit $failed
