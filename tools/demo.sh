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
event=events/alarm-router/metric-alarm.json
ok=events/alarm-router/metric-ok.json
mocks=statemachines/mocks/first-response.json
failed=0

scenario() {
  local title=$1 expected=$2; shift 2
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
