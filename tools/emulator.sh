#!/usr/bin/env bash
# Starts, stops or reports the local AWS emulator (moto server) that `make invoke` uses.
#   tools/emulator.sh start|stop|status     (PORT defaults to 5055, loopback only)
set -euo pipefail
cd "$(dirname "$0")/.."
port="${MOTO_PORT:-5055}"
state=.local
pidfile="$state/moto-$port.pid"
url="http://127.0.0.1:$port"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
healthy() { curl -fsS -o /dev/null "$url/moto-api/" 2>/dev/null; }

case "${1:-status}" in
  start)
    if running && healthy; then echo "emulator already running at $url"; exit 0; fi
    [ -x .venv/bin/moto_server ] || { echo "moto is not installed: run 'make setup'" >&2; exit 1; }
    mkdir -p "$state"
    nohup .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$state/moto-$port.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do
      if healthy; then echo "emulator running at $url (log: $state/moto-$port.log)"; exit 0; fi
      running || break
      sleep 0.1
    done
    echo "the emulator did not start; see $state/moto-$port.log" >&2
    exit 1
    ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; echo "emulator stopped"; fi
    rm -f "$pidfile"
    ;;
  status)
    if running && healthy; then echo "emulator running at $url"; else echo "emulator not running"; exit 1; fi
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
