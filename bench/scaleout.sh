#!/usr/bin/env bash
# The scale-out backend against the single node, on this machine, in one run:
#   (a) the SQLite single node (`serve`),
#   (b) redis+mongo with one gateway (and one worker),
#   (c) redis+mongo with two gateways (two wrk instances, one per gateway, summed),
# each for POST submit (a new idempotency key per request) and GET status of a completed
# process at --connections in all, in --rounds rounds of (a), (b), (c) one after the other:
# the figures are each case's median, its ratio to (a) the median of the ratios within a
# round (the machine's speed drifts over minutes; a case is compared with the single node
# measured a minute before it, not ten). With redis-benchmark SET and XADD on a redis-server of
# the same run as the engine's own ceiling. Then the worker takeover time after a kill -9
# (median and worst of --takeovers runs), Redis's memory for --finished processes run to
# their end (what they leave in Redis, scaled to 10,000) and Redis's memory after the runs.
# MongoDB is FerretDB (SQLite handler; PostgreSQL handler with STARGATE_BENCH_FERRETDB=
# postgresql) unless STARGATE_BENCH_MONGODB_URI names a mongod; stargate-mongo-load
# measures its own ceiling (journaled inserts, lookups) as a yardstick.
# Usage: bench/scaleout.sh [--duration 10s] [--connections 32] [--rounds 3] [--takeovers 5]
#                          [--finished 500] [--record]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

duration=10s connections=32 rounds=3 takeovers=5 finished=500 record=no
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --takeovers) takeovers=$2; shift 2 ;;
    --finished) finished=$2; shift 2 ;;
    --record) record=yes; shift ;;
    *) echo "usage: bench/scaleout.sh [--duration 10s] [--connections 32] [--rounds 3] [--takeovers 5] [--finished 500] [--record]" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]?$ ]] || { echo "bench/scaleout.sh: --rounds is 1 to 99" >&2; exit 2; }

build_release
work=$(mktemp -d /tmp/stargate-bench-XXXXXX)
order='{"orderId":"ORD-12345","items":[{"sku":"SKU-001","quantity":1}]}'

start_engines

echo "redis-benchmark SET and XADD ..." >&2
# "SET: 67636.12 requests per second, ..." (a custom command names itself in full first)
redis_rate() {
  tr '\r' '\n' | awk '/requests per second/ { for (i = 2; i <= NF; i++) if ($(i + 1) == "requests") { print int($i); break } }' | tail -1
}
redis_set=$(redis-benchmark -p "$redis_port" -q -n 200000 -c "$connections" -t set | redis_rate)
redis_xadd=$(redis-benchmark -p "$redis_port" -q -n 200000 -c "$connections" \
  XADD bench:stream '*' f v | redis_rate)
redis-cli -p "$redis_port" del bench:stream >/dev/null
# The MongoDB server's own ceiling through the same driver and write concern: journaled
# inserts of one document and of 32 at a time, and lookups by _id, at --connections threads.
echo "MongoDB inserts and finds ..." >&2
read -r mongo_single _ mongo_finds < <("$bin/stargate-mongo-load" "${mongo_uri%/*}/bench_yardstick" "$connections" 5 1)
read -r mongo_batched mongo_batches _ < <("$bin/stargate-mongo-load" "${mongo_uri%/*}/bench_yardstick" "$connections" 5 32)

# config BACKEND STEP LEASE: server.toml for the next run; each case has a database of its
# own (set $database) and starts on an empty Redis (fresh_redis), so that one case's queued
# orders do not wait in front of the next: a worker would otherwise take the entries the last
# case left in the shared queue one by one, each a lookup of a process its database lacks.
database=stargate
fresh_redis() { redis-cli -p "$redis_port" flushall >/dev/null; }
config() {
  local backend=""
  if [ "$1" = mongo ]; then
    backend="[store]
backend = \"redis+mongo\"
[redis]
url = \"redis://127.0.0.1:$redis_port\"
[mongo]
uri = \"${mongo_uri%/*}/$database\""
  fi
  cat >"$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$work/server"
[engine]
workers = 1
lease = "${3:-30s}"
[order]
step_duration = "$2"
default_stock = 1000000000000
[rate_limit]
per_minute = 10000000
burst = 10000000
$backend
TOML
}

gateway_pids=() worker_pids=() gateway_ports=()
# start MODE GATEWAYS WORKERS: serve (sqlite) or gateways and workers (mongo)
start() {
  gateway_pids=() worker_pids=() gateway_ports=()
  local role=serve i
  [ "$1" = mongo ] && role=gateway
  for i in $(seq "$2"); do
    rm -f "$work/port$i"
    "$bin/stargate-server" --log-level warn "$role" --config "$work/server.toml" \
      --port-file "$work/port$i" >>"$work/gateway$i.log" 2>&1 &
    gateway_pids+=($!) && pids+=($!)
    wait_for "[ -s '$work/port$i' ]" || { cat "$work/gateway$i.log" >&2; exit 1; }
    gateway_ports+=("$(cat "$work/port$i")")
  done
  port=${gateway_ports[0]}
  [ "$1" = mongo ] || return 0
  for i in $(seq "$3"); do
    "$bin/stargate-server" --log-level info worker --config "$work/server.toml" \
      >>"$work/worker$i.log" 2>&1 &
    worker_pids+=($!) && pids+=($!)
  done
}
stop() {
  for pid in "${gateway_pids[@]}" "${worker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${gateway_pids[@]}" "${worker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}

cat >"$work/post.lua" <<'LUA'
local order = os.getenv("ORDER")
local auth = "Bearer " .. os.getenv("TOKEN")
local counter = 0
-- Each wrk instance has a prefix of its own: Lua's random numbers are the same in every
-- process, so two instances would otherwise send the same keys (replays, not submissions).
local prefix = os.getenv("KEY_PREFIX") .. "-" .. tostring(math.random(1, 1000000000))
function setup(thread) thread:set("id", tostring(math.random(1, 1000000000))) end
request = function()
  counter = counter + 1
  local key = prefix .. "-" .. id .. "-" .. counter
  local body = '{"clientProcessId":"' .. key .. '","processType":"order","idempotencyKey":"' ..
               key .. '","data":' .. order .. '}'
  return wrk.format("POST", "/api/stargate/processes",
    {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
LUA

# measure URLPATH [wrk args]: over every gateway at once, connections split between them;
# prints "req/s p50 p99 non2xx" (summed rate, worst latencies)
measure() {
  local path=$1; shift
  local n=${#gateway_ports[@]} i out=()
  local threads=$((2 / n)); [ "$threads" -ge 1 ] || threads=1
  for i in $(seq 0 $((n - 1))); do
    KEY_PREFIX="$$-$RANDOM-$i" ORDER=$order TOKEN=$token wrk -t"$threads" -c$((connections / n)) -d"$duration" --latency "$@" \
      "http://127.0.0.1:${gateway_ports[$i]}$path" >"$work/wrk$i.log" &
    out+=($!)
  done
  for pid in "${out[@]}"; do wait "$pid"; done
  for i in $(seq 0 $((n - 1))); do wrk_figures <"$work/wrk$i.log"; done |
    awk '{ rps += $1; if ($2 > p50) p50 = $2; if ($3 > p99) p99 = $3; bad += $4 }
         END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad }'
}

# case NAME MODE GATEWAYS ROUND: GET then POST, as bench/server.sh does: GET with orders
# that finish at once, POST with orders that stay at their first step (1 h) so that the
# workers do not compete for the machine while the gateways are measured. Figures go in
# rps[NAME-get-ROUND] and so on; each round has databases of its own.
declare -A rps p50 p99
run_case() {
  local name=$1 mode=$2 gateways=$3 round=$4
  database="stargate_${name}_$round"
  rm -rf "$work/server"
  fresh_redis
  config "$mode" 0ms
  start "$mode" "$gateways" 1
  rm -f "$work/secret"
  provision "$work/server.toml"
  echo "$(date +%T) round $round, $name: GET status ..." >&2
  read -r rps[$name-get-$round] p50[$name-get-$round] p99[$name-get-$round] _ < <(measure "/api/stargate/processes/$process" -H "Authorization: Bearer $token")
  stop
  config "$mode" 1h
  start "$mode" "$gateways" 1
  echo "$(date +%T) round $round, $name: POST submit ..." >&2
  read -r rps[$name-post-$round] p50[$name-post-$round] p99[$name-post-$round] _ < <(measure "/" -s "$work/post.lua")
  stop
}
for round in $(seq "$rounds"); do
  run_case a sqlite 1 "$round"
  run_case b mongo 1 "$round"
  run_case c mongo 2 "$round"
done

# median: of the numbers on stdin, one a line (the lower middle one of an even count)
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# Each case's figures: the median over the rounds (rps[NAME-KIND] and so on), and its
# ratios to (a) of the same round (ratio[NAME-KIND]: the median; ratios[NAME-KIND]: each).
declare -A ratio ratios
for name in a b c; do
  for kind in post get; do
    for fig in rps p50 p99; do
      declare -n table=$fig
      table[$name-$kind]=$(for r in $(seq "$rounds"); do echo "${table[$name-$kind-$r]}"; done | median)
      unset -n table
    done
    each=$(for r in $(seq "$rounds"); do
      awk -v x="${rps[$name-$kind-$r]}" -v y="${rps[a-$kind-$r]}" 'BEGIN { printf "%.0f\n", 100 * x / y }'
    done)
    ratio[$name-$kind]="$(echo "$each" | median)%"
    ratios[$name-$kind]=$(echo "$each" | paste -sd' ' | sed 's/ /%, /g; s/$/%/')
  done
done

# --- worker takeover after kill -9 ---
echo "$(date +%T) worker takeover after kill -9 ($takeovers runs) ..." >&2
database=stargate_takeover
fresh_redis
config mongo 1s 3s
start mongo 1 2
rm -f "$work/secret"
provision "$work/server.toml"
takes=()
for n in $(seq "$takeovers"); do
  id=$(curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"clientProcessId\":\"take-$n\",\"processType\":\"order\",\"data\":$order}" \
    "http://127.0.0.1:$port/api/stargate/processes" | sed -E 's/.*"processId":"([^"]+)".*/\1/')
  wait_for "grep -q '$id: order started' $work/worker1.log $work/worker2.log" 20
  runner=1; grep -q "$id: order started" "$work/worker2.log" && runner=2
  other=$((3 - runner))
  killed=$(date +%s.%N)
  kill -KILL "${worker_pids[$((runner - 1))]}"
  wait "${worker_pids[$((runner - 1))]}" 2>/dev/null || true
  wait_for "grep -q '$id: order started' $work/worker$other.log" 30
  taken=$(date +%s.%N)
  takes+=("$(awk -v a="$killed" -v b="$taken" 'BEGIN { printf "%.2f", b - a }')")
  "$bin/stargate-server" --log-level info worker --config "$work/server.toml" \
    >>"$work/worker$runner.log" 2>&1 &
  worker_pids[$((runner - 1))]=$! && pids+=($!)
  wait_for "curl -s -H 'Authorization: Bearer $token' http://127.0.0.1:$port/api/stargate/processes/$id | grep -q completed" 30
done
stop
take_median=$(printf '%s\n' "${takes[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
take_worst=$(printf '%s\n' "${takes[@]}" | sort -n | tail -1)

# --- what finished processes leave in Redis ---
# --finished orders (steps that take no time) submitted by 16 connections at once, run to their
# end by two workers; Redis's memory and keys before and after. What stays is the change
# feed's entries within its retention (and the rate-limit bucket); queue entries go when
# their process ends, answers are cached only when read.
echo "$(date +%T) $finished processes run to their end ..." >&2
database=stargate_finished
fresh_redis
config mongo 0ms
start mongo 1 2
rm -f "$work/secret"
provision "$work/server.toml"
redis_used() { redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r'; }
open_processes() {
  curl -s "http://127.0.0.1:$port/metrics" |
    awk '/^stargate_processes\{state="(accepted|processing)"\}/ { n += $2; seen = 1 }
         END { print seen ? n : "unknown" }'
}
redis-cli -p "$redis_port" memory purge >/dev/null
finished_memory_before=$(redis_used)
printf '%s' "{\"clientProcessId\":\"finished\",\"processType\":\"order\",\"data\":$order}" >"$work/finished.json"
finished_started=$(date +%s.%N)
finished_accepted=$(curl -s --no-progress-meter -Z --parallel-max 16 -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d @"$work/finished.json" -o /dev/null -w '%{http_code}\n' \
  "http://127.0.0.1:$port/api/stargate/processes?n=[1-$finished]" | grep -c '^202$' || true)
# The counts read every process on FerretDB's SQLite handler: asked every 2 s, not more.
left=unknown
for _ in $(seq 900); do left=$(open_processes) && [ "$left" = 0 ] && break; sleep 2; done
[ "$left" = 0 ] || { echo "bench: $left processes still open after 30 min" >&2; exit 1; }
finished_seconds=$(awk -v a="$finished_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
redis-cli -p "$redis_port" memory purge >/dev/null
finished_memory=$(( $(redis_used) - finished_memory_before ))
finished_keys=$(redis-cli -p "$redis_port" dbsize)
finished_per_10k=$(awk -v m="$finished_memory" -v n="$finished_accepted" 'BEGIN { printf "%.0f", n ? m * 10000 / n : 0 }')
stop

redis_memory=$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ { print $2 }' | tr -d '\r')
redis_keys=$(redis-cli -p "$redis_port" dbsize)

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
summary=$(cat <<TXT
| case | POST req/s | POST p50/p99 ms | GET req/s | GET p50/p99 ms | POST vs (a) | GET vs (a) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| (a) SQLite single node | ${rps[a-post]} | ${p50[a-post]} / ${p99[a-post]} | ${rps[a-get]} | ${p50[a-get]} / ${p99[a-get]} | 100% | 100% |
| (b) redis+mongo, 1 gateway | ${rps[b-post]} | ${p50[b-post]} / ${p99[b-post]} | ${rps[b-get]} | ${p50[b-get]} / ${p99[b-get]} | ${ratio[b-post]} | ${ratio[b-get]} |
| (c) redis+mongo, 2 gateways | ${rps[c-post]} | ${p50[c-post]} / ${p99[c-post]} | ${rps[c-get]} | ${p50[c-get]} / ${p99[c-get]} | ${ratio[c-post]} | ${ratio[c-get]} |

Each figure is the case's median over $rounds rounds; each ratio the median of its rounds' ratios
to (a) of the same round, which were: POST (b) ${ratios[b-post]}; (c) ${ratios[c-post]}; GET (b)
${ratios[b-get]}; (c) ${ratios[c-get]}.

Yardsticks, same run ($connections connections): redis-benchmark SET $redis_set req/s, XADD
$redis_xadd req/s; MongoDB journaled inserts of one document $mongo_single/s, of 32 at a
time $mongo_batched documents/s ($mongo_batches inserts/s), lookups by _id $mongo_finds/s.
A submission waits for one journaled insert (its process with its key, batched with the others
in flight; its audit records follow in blocks) and a status read writes one audit record: POST (b) is $(pct "${rps[b-post]}" "$mongo_single")
of MongoDB's single inserts, GET (b) $(pct "${rps[b-get]}" "$mongo_batched") of its batched documents.
Worker takeover after kill -9 (lease 3s, $takeovers runs): median ${take_median} s, worst ${take_worst} s.
Redis for finished processes: $finished_accepted orders run to their end in ${finished_seconds} s
(2 workers) left $finished_memory bytes more in Redis ($finished_keys keys then), $finished_per_10k bytes
scaled to 10,000: the change feed's entries within its retention; queue entries go when done.
Redis after the last run: $redis_keys keys, used_memory $redis_memory bytes.
MongoDB: $mongo_name.
TXT
)
echo "$summary"
if [ "$record" = yes ]; then
  {
    echo
    echo "### bench/scaleout.sh — $(date -u +%Y-%m-%d)"
    echo
    echo "Command: \`bench/scaleout.sh --duration $duration --connections $connections --rounds $rounds --takeovers $takeovers --finished $finished\`"
    echo "(wrk on loopback, Release build; every process on this one machine). Machine: $(machine)."
    echo
    echo "$summary"
  } >>"$repo/bench/RESULTS.md"
fi
