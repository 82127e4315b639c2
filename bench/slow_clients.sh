#!/usr/bin/env bash
# The gateway under slow and idle clients (issue 10), Release build on loopback. Three
# attacks, one after the other, each for --duration (default 60 s) with 1,000 connections:
#   slow headers (slowhttptest -H: slowloris), slow body (slowhttptest -B: R-U-Dead-Yet),
#   and 1,000 connections opened and left silent.
# Meanwhile a normal client (from 127.0.0.2, another loopback address) asks for
# /health/live and for an authenticated status GET five times a second; the figures are
# its answers (p50, p99, max, failures) and the server's largest thread count and memory.
# The per-address cap is raised above 1,000 so that the attack's connections are really
# held (with the default of 128, all but 128 would be refused at once).
# With --scale-out the server is a `gateway` on redis+mongo (a redis-server and FerretDB of
# the run's own, with one worker), so that MongoDB and Redis sit behind every request.
# Usage: bench/slow_clients.sh [--duration 60] [--connections 1000] [--scale-out] [--record]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

duration=60 connections=1000 record=no scale_out=no
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --record) record=yes; shift ;;
    --scale-out) scale_out=yes; shift ;;
    *) echo "usage: bench/slow_clients.sh [--duration 60] [--connections 1000] [--scale-out] [--record]" >&2; exit 2 ;;
  esac
done
ulimit -n "$(ulimit -Hn)"

build_release
work=$(mktemp -d /tmp/stargate-slow-XXXXXX)
cat >"$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$work/server"
max_connections_per_address = 5000
[order]
step_duration = "0ms"
TOML
if [ "$scale_out" = yes ]; then
  start_engines
  cat >>"$work/server.toml" <<TOML
[store]
backend = "redis+mongo"
[redis]
url = "redis://127.0.0.1:$redis_port"
[mongo]
uri = "$mongo_uri"
TOML
  start_server gateway
  "$bin/stargate-server" --log-level warn worker --config "$work/server.toml" \
    >>"$work/worker.log" 2>&1 &
  pids+=($!)
else
  start_server
fi
provision "$work/server.toml"
status_url="http://127.0.0.1:$port/api/stargate/processes/$process"

# The normal client: one request every 200 ms to each URL, for $duration seconds.
probe() {  # probe NAME
  local end=$((SECONDS + duration))
  while [ $SECONDS -lt $end ]; do
    curl -s -o /dev/null --interface 127.0.0.2 --max-time 10 -w '%{http_code} %{time_total}\n' \
      "http://127.0.0.1:$port/health/live" >>"$work/$1.live" || echo "000 10" >>"$work/$1.live"
    curl -s -o /dev/null --interface 127.0.0.2 --max-time 10 -w '%{http_code} %{time_total}\n' \
      -H "Authorization: Bearer $token" "$status_url" >>"$work/$1.status" ||
      echo "000 10" >>"$work/$1.status"
    sleep 0.2
  done
}
# The server's threads and resident memory, once a second.
watch_server() {  # watch_server NAME
  local end=$((SECONDS + duration))
  while [ $SECONDS -lt $end ]; do
    awk '/^Threads:/ {t=$2} /^VmRSS:/ {r=$2} END {print t, r}' "/proc/$server_pid/status" \
      >>"$work/$1.server"
    sleep 1
  done
}
# "p50 p99 max failures/total" of one probe file (times in ms).
figures() {
  local bad n
  bad=$(awk '$1 != "200"' "$1" | wc -l)
  awk '{ print $2 * 1000 }' "$1" | sort -n >"$1.sorted"
  n=$(wc -l <"$1.sorted")
  awk -v n="$n" -v bad="$bad" '{ t[NR] = $1 } END {
    i = int(n * 0.99) + 1; if (i > n) i = n
    printf "%.1f %.1f %.1f %d/%d\n", t[int(n * 0.5) + 1], t[i], t[n], bad, n }' "$1.sorted"
}
idle_connections() {  # holds $connections silent connections for $duration seconds
  python3 - "$port" "$connections" "$duration" <<'PY'
import socket, sys, time
port, count, duration = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
held, end = [], time.time() + duration
while time.time() < end:
    # Keep `count` open: the server closes silent ones after its deadlines; open again.
    alive = []
    for s in held:
        try:
            s.setblocking(False)
            if s.recv(1, socket.MSG_PEEK) == b"":
                s.close()
                continue
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        alive.append(s)
    held = alive
    while len(held) < count:
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        held.append(s)
    time.sleep(0.5)
PY
}

baseline=$(awk '/^Threads:/ {t=$2} /^VmRSS:/ {r=$2} END {print t, r}' "/proc/$server_pid/status")
rows=""
for attack in slow-headers slow-body idle; do
  echo "attack: $attack, $connections connections, ${duration}s ..." >&2
  case "$attack" in
    slow-headers)
      slowhttptest -H -c "$connections" -r 500 -i 8 -l "$duration" -p 3 -x 24 \
        -u "http://127.0.0.1:$port/health/live" >"$work/$attack.slowhttptest" 2>&1 & ;;
    slow-body)
      slowhttptest -B -c "$connections" -r 500 -i 8 -l "$duration" -p 3 -s 8192 -x 24 \
        -u "http://127.0.0.1:$port/api/stargate/processes" >"$work/$attack.slowhttptest" 2>&1 & ;;
    idle)
      idle_connections & ;;
  esac
  attacker=$!
  pids+=("$attacker")
  sleep 3
  watch_server "$attack" &
  watcher=$!
  probe "$attack"
  wait "$watcher" || true
  kill "$attacker" 2>/dev/null || true
  wait "$attacker" 2>/dev/null || true
  read -r live_p50 live_p99 live_max live_bad < <(figures "$work/$attack.live")
  read -r st_p50 st_p99 st_max st_bad < <(figures "$work/$attack.status")
  read -r threads rss < <(awk '{ if ($1 > t) t = $1; if ($2 > r) r = $2 } END { print t, r }' "$work/$attack.server")
  rows+="| $attack | $live_p50 / $live_p99 / $live_max | $live_bad | $st_p50 / $st_p99 / $st_max | $st_bad | $threads | $((rss / 1024)) |"$'\n'
  sleep 12  # the attack's last connections end at their deadlines
done

read -r base_threads base_rss <<<"$baseline"
summary=$(cat <<TXT
Server: $([ "$scale_out" = yes ] && echo "stargate-server gateway on redis+mongo ($mongo_name)" || echo "stargate-server serve (SQLite)").
Idle server before the attacks: $base_threads threads, $((base_rss / 1024)) MiB resident.

| attack ($connections connections, ${duration}s) | /health/live p50 / p99 / max ms | failed | status GET p50 / p99 / max ms | failed | max threads | max RSS MiB |
| --- | --- | ---: | --- | ---: | ---: | ---: |
$rows
TXT
)
echo "$summary"
if [ "$record" = yes ]; then
  {
    echo
    echo "### bench/slow_clients.sh — $(date -u +%Y-%m-%d)"
    echo
    flag=""; [ "$scale_out" = yes ] && flag=" --scale-out"
    echo "Command: \`bench/slow_clients.sh --duration $duration --connections $connections$flag\`"
    echo "(slowhttptest $(slowhttptest -h 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p'); Release build; normal client from 127.0.0.2 every 200 ms). Machine: $(machine)."
    echo
    echo "$summary"
  } >>"$repo/bench/RESULTS.md"
fi
