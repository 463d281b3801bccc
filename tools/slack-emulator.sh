#!/usr/bin/env bash
# Starts, stops or reports the local Slack emulator (`emulate`, pinned in tools/package.json) that
# `make invoke FN=slack-channel-creator` uses, seeded from tools/slack-emulator.yaml.
#   tools/slack-emulator.sh start|stop|status     (SLACK_PORT defaults to 4003)
# emulate listens on every interface (it has no host option); it holds only the fake seed data.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${SLACK_PORT:-4003}"
state=.local
pidfile="$state/slack-$port.pid"
url="http://127.0.0.1:$port"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
healthy() { curl -fsS -o /dev/null -X POST "$url/api/auth.test" 2>/dev/null; }

case "${1:-status}" in
  start)
    if running && healthy; then echo "Slack emulator already running at $url/api/"; exit 0; fi
    [ -x tools/node_modules/.bin/emulate ] || { echo "emulate is not installed: run 'make setup'" >&2; exit 1; }
    mkdir -p "$state"
    nohup tools/node_modules/.bin/emulate --service slack --port "$port" --seed tools/slack-emulator.yaml \
      >"$state/slack-$port.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
      if healthy; then echo "Slack emulator running at $url/api/ (log: $state/slack-$port.log)"; exit 0; fi
      running || break
      sleep 0.1
    done
    echo "the Slack emulator did not start; see $state/slack-$port.log" >&2
    exit 1
    ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; echo "Slack emulator stopped"; fi
    rm -f "$pidfile"
    ;;
  status)
    if running && healthy; then echo "Slack emulator running at $url/api/"; else echo "Slack emulator not running"; exit 1; fi
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
