#!/usr/bin/env bash
# Starts, stops or reports a local emulator that make invoke, make demo and make replay use:
#   tools/emulator.sh aws   start|stop|status   moto server on 127.0.0.1:${MOTO_PORT:-5055}
#   tools/emulator.sh slack start|stop|status   emulate (Slack Web API) on port ${SLACK_PORT:-4003},
#                                               seeded from tools/slack-emulator.yaml
# emulate listens on every interface (it has no host option); it holds only the fake seed data.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.local

case "${1:-}" in
  aws)
    port="${MOTO_PORT:-5055}"; name="AWS emulator (moto)"; url="http://127.0.0.1:$port"
    binary=.venv/bin/moto_server
    command=("$binary" -H 127.0.0.1 -p "$port")
    healthy() { curl -fsS -o /dev/null "$url/moto-api/" 2>/dev/null; }
    ;;
  slack)
    port="${SLACK_PORT:-4003}"; name="Slack emulator (emulate)"; url="http://127.0.0.1:$port/api/"
    binary=tools/node_modules/.bin/emulate
    command=("$binary" --service slack --port "$port" --seed tools/slack-emulator.yaml)
    healthy() { curl -fsS -o /dev/null -X POST "${url}auth.test" 2>/dev/null; }
    ;;
  *) echo "usage: $0 aws|slack start|stop|status" >&2; exit 2 ;;
esac
pidfile="$state/$1-$port.pid"
log="$state/$1-$port.log"
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${2:-status}" in
  start)
    if running && healthy; then echo "$name already running at $url"; exit 0; fi
    [ -x "$binary" ] || { echo "$binary is not installed: run 'make setup'" >&2; exit 1; }
    mkdir -p "$state"
    nohup "${command[@]}" >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
      if healthy; then echo "$name running at $url (log: $log)"; exit 0; fi
      running || break
      sleep 0.1
    done
    echo "the $name did not start; see $log" >&2
    exit 1
    ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; echo "$name stopped"; fi
    rm -f "$pidfile"
    ;;
  status)
    if running && healthy; then echo "$name running at $url"; else echo "$name not running"; exit 1; fi
    ;;
  *) echo "usage: $0 aws|slack start|stop|status" >&2; exit 2 ;;
esac
