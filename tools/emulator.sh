#!/usr/bin/env bash
# Starts, stops or reports a local emulator that make invoke, make demo and make replay use:
#   tools/emulator.sh aws   start|stop|status   moto server on 127.0.0.1:${MOTO_PORT:-5055}, through
#                                               tools/moto_server.py (adds ssm:ListCommandInvocations)
#   tools/emulator.sh slack start|stop|status   emulate (Slack Web API) on port ${SLACK_PORT:-4003},
#                                               seeded from tools/slack-emulator.yaml
# emulate listens on every interface (it has no host option); it holds only the fake seed data.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.local

case "${1:-}" in
  aws)
    port="${MOTO_PORT:-5055}"; port_variable=MOTO_PORT; name="AWS emulator (moto)"; url="http://127.0.0.1:$port"
    binary=.venv/bin/python
    script=tools/moto_server.py
    command=("$binary" "$script" -H 127.0.0.1 -p "$port")
    healthy() { curl -fsS -o /dev/null "$url/moto-api/" 2>/dev/null; }
    ;;
  slack)
    port="${SLACK_PORT:-4003}"; port_variable=SLACK_PORT; name="Slack emulator (emulate)"; url="http://127.0.0.1:$port/api/"
    binary=tools/node_modules/.bin/emulate
    script=$binary
    command=("$binary" --service slack --port "$port" --seed tools/slack-emulator.yaml)
    healthy() { curl -fsS -o /dev/null -X POST "${url}auth.test" 2>/dev/null; }
    ;;
  *) echo "usage: $0 aws|slack start|stop|status" >&2; exit 2 ;;
esac
pidfile="$state/$1-$port.pid"
log="$state/$1-$port.log"
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
# Something accepts connections on the port (ours or not).
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
# Who listens on the port, as well as this machine can tell.
holder() {
  local who=""
  if command -v ss >/dev/null 2>&1; then
    who=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(.*)' | sort -u | paste -sd ' ' -)
  elif command -v lsof >/dev/null 2>&1; then
    who=$(lsof -nP -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | awk 'NR > 1 { print $1 " (pid " $2 ")" }' | sort -u | paste -sd ' ' -)
  fi
  echo "${who:-something else (a process of another user, or no ss or lsof to tell which)}"
}
taken() {
  echo "port $port is taken by $(holder), not by the $name this script starts;" \
    "stop that, or choose another port with $port_variable=..." >&2
  exit 1
}
died() {
  echo "the $name exited while starting; the last lines of $log:" >&2
  tail -n 20 "$log" | sed 's/^/  /' >&2
  exit 1
}

case "${2:-status}" in
  start)
    if running && healthy; then echo "$name already running at $url"; exit 0; fi
    [ -x "$binary" ] || { echo "$binary is not installed: run 'make setup'" >&2; exit 1; }
    [ -e "$script" ] || { echo "$script is missing" >&2; exit 1; }
    rm -f "$pidfile"
    listening && taken
    mkdir -p "$state"
    nohup "${command[@]}" >"$log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 300); do
      if ! running; then
        rm -f "$pidfile"
        # It may have lost the port to a process that took it meanwhile.
        if listening; then taken; fi
        died
      fi
      if healthy; then echo "$name running at $url (log: $log)"; exit 0; fi
      sleep 0.1
    done
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    echo "the $name did not answer at $url within 30 s and was stopped; see $log" >&2
    exit 1
    ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; echo "$name stopped"; fi
    rm -f "$pidfile"
    ;;
  status)
    if running && healthy; then echo "$name running at $url"; exit 0; fi
    echo "$name not running"
    if listening; then echo "(port $port is taken by $(holder))"; fi
    exit 1
    ;;
  *) echo "usage: $0 aws|slack start|stop|status" >&2; exit 2 ;;
esac
