#!/usr/bin/env bash
# Daemon figures, Release build, everything on this machine:
#   (a) durable submissions per second through the socket API from 32 concurrent clients,
#       next to the raw rate of single-row durable SQLite commits on the same disk;
#   (b) the time of one `stargate submit` from a shell, next to `curl --unix-socket`
#       doing one request to the same socket (hyperfine);
#   (c) the daemon's resident memory and CPU while it polls 10,000 processes against a
#       local server at the 60 s interval.
# Usage: bench/daemon.sh [--processes 10000] [--measure 120] [--record]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

processes=10000 measure=120 record=no
while [ $# -gt 0 ]; do
  case "$1" in
    --processes) processes=$2; shift 2 ;;
    --measure) measure=$2; shift 2 ;;
    --record) record=yes; shift ;;
    *) echo "usage: bench/daemon.sh [--processes N] [--measure SECONDS] [--record]" >&2; exit 2 ;;
  esac
done

build_release
work=$(mktemp -d /tmp/stargate-bench-XXXXXX)

# --- a server whose orders never finish, and a daemon polling slowly from the start ---
cat >"$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$work/server"
[order]
step_duration = "1h"
[engine]
workers = 1
[rate_limit]
per_minute = 10000000
burst = 10000000
TOML
"$bin/stargate-server" --log-level warn serve --config "$work/server.toml" \
  --port-file "$work/port" >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_for "[ -s '$work/port' ]"
port=$(cat "$work/port")
client_id=$("$bin/stargate-server" client add --config "$work/server.toml" --tenant bench \
  --process-types order --secret-file "$work/secret")

start_daemon() {  # start_daemon GATEWAY_PORT
  cat >"$work/stargated.toml" <<TOML
[gateway]
url = "http://127.0.0.1:$1"
[credentials]
client_id = "$client_id"
client_secret_file = "$work/secret"
[queue]
path = "$work/daemon/queue.db"
retry_max = "1s"
[socket]
path = "$work/stargated.sock"
[polling]
fast_phase = "0s"
slow_interval = "60s"
TOML
  "$bin/stargated" --log-level warn --config "$work/stargated.toml" >>"$work/daemon.log" 2>&1 &
  daemon_pid=$!
  pids+=("$daemon_pid")
  wait_for "[ -S '$work/stargated.sock' ]"
}

# (a) with the gateway unreachable, so the daemon only queues: the figure is the socket API
# and the durable commit, nothing else.
start_daemon 1
echo "(a) durable submissions, 32 clients, 10 s ..." >&2
read -r submit_rps submit_p50 submit_p99 submit_errors < <("$bin/stargate-socket-load" \
  "$work/stargated.sock" 32 10)
echo "(a) raw single-row durable SQLite commits, 10 s ..." >&2
raw_rps=$(sqlite3 "$work/raw.db" "PRAGMA journal_mode=WAL;" >/dev/null &&
  start=$(date +%s%N) && n=0 &&
  { echo "PRAGMA synchronous=FULL; CREATE TABLE t (x TEXT);"
    for i in $(seq 2000); do echo "INSERT INTO t VALUES ('$i');"; done; } |
  sqlite3 "$work/raw.db" >/dev/null && end=$(date +%s%N) &&
  awk -v n=2000 -v ns=$((end - start)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')

# (b) one CLI invocation against one curl request, same socket, same daemon.
echo "(b) stargate submit vs curl --unix-socket ..." >&2
order='{"orderId":"ORD-1","items":[{"sku":"A","quantity":1}]}'
echo "$order" >"$work/order.json"
echo "{\"processType\":\"order\",\"data\":$order}" >"$work/request.json"
hyperfine -N --warmup 5 --runs 200 --export-json "$work/hyperfine.json" \
  "$bin/stargate --socket $work/stargated.sock submit order --data-file $work/order.json" \
  "curl -s --unix-socket $work/stargated.sock -H Content-Type:application/json -d @$work/request.json http://localhost/v1/processes" \
  >/dev/null
read -r cli_ms curl_ms < <(python3 -c "
import json; r = json.load(open('$work/hyperfine.json'))['results']
print('%.2f %.2f' % (r[0]['mean'] * 1000, r[1]['mean'] * 1000))")
kill -TERM "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true
rm -rf "$work/daemon" "$work/stargated.sock"

# (c) N processes accepted by the server and polled every 60 s.
start_daemon "$port"
echo "(c) queueing and sending $processes processes ..." >&2
"$bin/stargate-socket-load" "$work/stargated.sock" 16 --count "$processes" poll >/dev/null
active() { curl -s --unix-socket "$work/stargated.sock" http://localhost/v1/health |
  sed -E 's/.*"activeProcesses":([0-9]+).*/\1/'; }
wait_for "[ \"\$(active)\" -ge $processes ]" 900
echo "(c) measuring for $measure s while $(active) processes are polled ..." >&2
ticks() { awk '{ print $14 + $15 }' "/proc/$daemon_pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); sleep "$measure"; t1=$(ticks)
cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$measure" 'BEGIN { printf "%.2f", 100 * d / hz / s }')
rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$daemon_pid/status")
polls=$(curl -s --unix-socket "$work/stargated.sock" http://localhost/v1/metrics |
  awk '/^stargated_polls_total\{outcome="ok"\}/ { print $2 }')

summary=$(cat <<TXT
| figure | value | aim |
| --- | ---: | --- |
| (a) durable socket submissions, 32 clients | $submit_rps /s (p50 $submit_p50 ms, p99 $submit_p99 ms) | ≥ 5× the raw commit rate |
| (a) raw single-row durable SQLite commits | $raw_rps /s | — |
| (a) ratio | $(awk -v a="$submit_rps" -v b="$raw_rps" 'BEGIN { printf "%.1f×", a / b }') | ≥ 5× |
| (b) \`stargate submit\`, one run | $cli_ms ms | ≤ half of curl |
| (b) \`curl --unix-socket\`, one request | $curl_ms ms | — |
| (c) resident memory, $processes processes polled | $rss MB | < 100 MB |
| (c) CPU over $measure s at the 60 s interval | $cpu % of one core ($polls polls) | < 5% |
TXT
)
echo "$summary"
[ "${submit_errors:-0}" = 0 ] || echo "warning: $submit_errors failed submissions in (a)" >&2
if [ "$record" = yes ]; then
  {
    echo
    echo "### bench/daemon.sh — $(date -u +%Y-%m-%d)"
    echo
    echo "Command: \`bench/daemon.sh --processes $processes --measure $measure\` (Release build)."
    echo "Machine: $(machine)."
    echo
    echo "$summary"
  } >>"$repo/bench/RESULTS.md"
fi
