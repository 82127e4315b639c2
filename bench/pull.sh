#!/usr/bin/env bash
# How the daemon learns that processes ended: schedule mode (each process polled on the
# seed's schedule) against feed mode (one long poll of the gateway's change feed for all),
# Release build, everything on this machine.
#   (a) 1,000 processes whose durations are spread evenly from 5 s to 5 min, on a clock
#       scaled down SCALE times (default 10: 0.5 s to 30 s, every daemon interval divided
#       alike, so requests per process are those of the unscaled run and delays are 1/SCALE
#       of it), one daemon, both modes in the same go, each on a fresh server: gateway
#       requests per completed process, the delay between the server finishing a process
#       and the daemon recording it (p50, p99; also times SCALE), the server's CPU time.
#   (b) OPEN processes (default 10,000; also try 100000) that stay open, one daemon in feed
#       mode: its resident memory and CPU, and gateway requests per minute, over MEASURE s.
# Usage: bench/pull.sh [--processes 1000] [--scale 10] [--open 10000] [--measure 60] [--record]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

processes=1000 scale=10 open=10000 measure=60 record=no
while [ $# -gt 0 ]; do
  case "$1" in
    --processes) processes=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --open) open=$2; shift 2 ;;
    --measure) measure=$2; shift 2 ;;
    --record) record=yes; shift ;;
    *) echo "usage: bench/pull.sh [--processes N] [--scale K] [--open N] [--measure S] [--record]" >&2
       exit 2 ;;
  esac
done

build_release
work=$(mktemp -d /tmp/stargate-bench-XXXXXX)
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ms() { awk -v v="$1" -v k="$scale" 'BEGIN { printf "%.0fms", v / k }'; }  # ms VALUE_MS

# An exec handler that sleeps for the process's data.seconds.
cat >"$work/sleeper" <<'SH'
#!/bin/sh
read -r line
seconds=$(printf '%s' "$line" | sed -E 's/.*"seconds":([0-9.]+).*/\1/')
sleep "$seconds"
echo '{"slept":true}'
SH
chmod +x "$work/sleeper"

# start_stack NAME MODE SERVER_EXTRA DAEMON_EXTRA: a fresh server and daemon in $work/NAME.
start_stack() {
  local dir="$work/$1"
  mkdir -p "$dir"
  cat >"$dir/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$dir/server"
http_threads = 64
[rate_limit]
per_minute = 10000000
burst = 10000000
[process_types.sleep]
handler = "exec"
command = ["$work/sleeper"]
expected_duration = "1m"
[process_types.order]
$3
TOML
  "$bin/stargate-server" --log-level warn serve --config "$dir/server.toml" \
    --port-file "$dir/port" >"$dir/server.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  wait_for "[ -s '$dir/port' ]"
  port=$(cat "$dir/port")
  client_id=$("$bin/stargate-server" client add --config "$dir/server.toml" --tenant bench \
    --process-types sleep,order --secret-file "$dir/secret")
  cat >"$dir/stargated.toml" <<TOML
[gateway]
url = "http://127.0.0.1:$port"
[credentials]
client_id = "$client_id"
client_secret_file = "$dir/secret"
[queue]
path = "$dir/queue.db"
[socket]
path = "$dir/stargated.sock"
[polling]
mode = "$2"
$4
TOML
  "$bin/stargated" --log-level warn --config "$dir/stargated.toml" >"$dir/daemon.log" 2>&1 &
  daemon_pid=$!
  pids+=("$daemon_pid")
  wait_for "[ -S '$dir/stargated.sock' ]"
  sock="$dir/stargated.sock"
}
stop_stack() {
  kill -TERM "$daemon_pid" "$server_pid" 2>/dev/null || true
  wait "$daemon_pid" "$server_pid" 2>/dev/null || true
}

# Gateway requests of the process API so far (submits, status reads, feed requests).
api_requests() {
  curl -s "http://127.0.0.1:$port/metrics" | awk '
    /^stargate_http_requests_total/ && /route="\/api\/stargate\/processes/ {
      sub(/.*\} /, ""); n += $0 }
    END { print n + 0 }'
}

# Requests of one route so far (GET :id, GET changes, POST processes).
route_requests() {  # route_requests METHOD ROUTE
  curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" -v r="$2" '
    /^stargate_http_requests_total/ && index($0, "method=\"" m "\",route=\"" r "\"") {
      sub(/.*\} /, ""); n += $0 }
    END { print n + 0 }'
}

# (a) one mode: submit the processes through the socket, wait for every one to end.
run_mode() {  # run_mode MODE -> "requests_per_process p50_ms p99_ms cpu_s seconds"
  local mode=$1
  # As many engine workers as processes (up to the 1024 allowed), so that all of them run
  # at once for the durations above instead of waiting their turn.
  start_stack "a-$mode" "$mode" "[engine]
workers = $((processes < 1024 ? processes : 1024))" "fast_interval = \"$(ms 30000)\"
fast_phase = \"$(ms 120000)\"
slow_interval = \"$(ms 60000)\"
timeout = \"$(ms 600000)\"
feed_wait = \"$(ms 30000)\"
feed_interval = \"$(ms 1000)\""
  local t0 c0 r0
  t0=$(date +%s.%N) c0=$(ticks "$server_pid") r0=$(api_requests)
  python3 - "$sock" "$processes" "$scale" <<'PY'
import http.client, json, socket, sys
path, count, scale = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(path)
conn = Unix("localhost")
for i in range(count):
    seconds = (5 + (300 - 5) * i / max(count - 1, 1)) / scale   # spread evenly
    body = json.dumps({"processType": "sleep", "clientProcessId": "p-%d" % i,
                       "data": {"seconds": round(seconds, 3)}})
    conn.request("POST", "/v1/processes", body, {"Content-Type": "application/json"})
    r = conn.getresponse(); r.read()
    if r.status != 202: sys.exit("submit %d: HTTP %d" % (i, r.status))
PY
  done_count() { sqlite3 "$work/a-$mode/queue.db" \
    "SELECT count(*) FROM requests WHERE state IN ('completed','failed')"; }
  wait_for "[ \"\$(done_count)\" -ge $processes ]" 1800
  local t1 c1 r1
  t1=$(date +%s.%N) c1=$(ticks "$server_pid") r1=$(api_requests)
  echo "(a) $mode: $(route_requests POST /api/stargate/processes) submits," \
    "$(route_requests GET /api/stargate/processes/:id) status reads," \
    "$(route_requests GET /api/stargate/processes/changes) feed requests" >&2
  stop_stack
  local delays
  delays=$(sqlite3 "$work/a-$mode/queue.db" \
    "ATTACH '$work/a-$mode/server/stargate-server.db' AS s;
     SELECT r.completed_at - p.finished_at FROM requests r
     JOIN s.processes p ON p.process_id = r.process_id ORDER BY 1;")
  awk -v n="$processes" -v r=$((r1 - r0)) -v c=$((c1 - c0)) -v hz="$hz" -v t="$t0" -v u="$t1" \
    'NR == 1 { } { d[NR] = $1 } END {
       printf "%.2f %.0f %.0f %.1f %.0f\n", r / n, d[int(NR * 0.5) + 1], d[int(NR * 0.99) + 1],
         c / hz, u - t }' <<<"$delays"
}

echo "(a) schedule mode, $processes processes, clock / $scale ..." >&2
read -r sched_req sched_p50 sched_p99 sched_cpu sched_s < <(run_mode schedule)
echo "(a) feed mode, $processes processes, clock / $scale ..." >&2
read -r feed_req feed_p50 feed_p99 feed_cpu feed_s < <(run_mode feed)

# (b) processes that stay open (each order step takes an hour), feed mode, real clock.
echo "(b) queueing and sending $open processes that stay open ..." >&2
start_stack b feed "[order]
step_duration = \"1h\"
[engine]
workers = 1" ""
"$bin/stargate-socket-load" "$sock" 16 --count "$open" open >/dev/null
active() { curl -s --unix-socket "$sock" http://localhost/v1/health |
  sed -E 's/.*"activeProcesses":([0-9]+).*/\1/'; }
wait_for "[ \"\$(active)\" -ge $open ]" 1800
sleep 5
echo "(b) measuring for $measure s while $(active) processes are open ..." >&2
d0=$(ticks "$daemon_pid") r0=$(api_requests)
sleep "$measure"
d1=$(ticks "$daemon_pid") r1=$(api_requests)
open_rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$daemon_pid/status")
open_cpu=$(awk -v d=$((d1 - d0)) -v hz="$hz" -v s="$measure" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
open_rpm=$(awk -v r=$((r1 - r0)) -v s="$measure" 'BEGIN { printf "%.1f", r * 60 / s }')
# The schedule would ask about each once a minute (slow phase).
stop_stack

x() { awk -v v="$1" -v k="$scale" 'BEGIN { printf "%.0f", v * k }'; }
summary=$(cat <<TXT
| figure | schedule mode | feed mode | aim (feed) |
| --- | ---: | ---: | --- |
| (a) gateway requests per completed process (submit included) | $sched_req | $feed_req | ≤ 1.5 |
| (a) end noticed after, p50 (measured; ×$scale for the unscaled clock) | $sched_p50 ms ($(x "$sched_p50") ms) | $feed_p50 ms ($(x "$feed_p50") ms) | < 1 s |
| (a) end noticed after, p99 | $sched_p99 ms ($(x "$sched_p99") ms) | $feed_p99 ms ($(x "$feed_p99") ms) | — |
| (a) server CPU (gateway + engine), whole run | $sched_cpu s in $sched_s s | $feed_cpu s in $feed_s s | — |
| (b) $open open processes: daemon resident memory | — | $open_rss MB | < 100 MB (100,000) |
| (b) daemon CPU | — | $open_cpu % of one core | < 2% (100,000) |
| (b) gateway requests per minute | $open (one poll each at 60 s) | $open_rpm | — |
TXT
)
echo "$summary"
if [ "$record" = yes ]; then
  {
    echo
    echo "### bench/pull.sh — $(date -u +%Y-%m-%d)"
    echo
    echo "Command: \`bench/pull.sh --processes $processes --scale $scale --open $open --measure $measure\`"
    echo "(Release build). Machine: $(machine)."
    echo
    echo "$summary"
  } >>"$repo/bench/RESULTS.md"
fi
