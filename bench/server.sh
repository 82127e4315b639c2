#!/usr/bin/env bash
# Gateway throughput and latency, measured with wrk on loopback against the Release build:
#   (a) GET status of a completed process,
#   (b) POST submit with a fresh idempotency key per request (durable: each 202 is committed),
# and, in the same run for scale, nginx answering a fixed 150-byte JSON.
# Usage: bench/server.sh [--duration 10s] [--connections 32] [--bin DIR] [--record]
#   --bin DIR measures the stargate-server in DIR instead (another checkout's build-release/bin,
#   to compare two versions in one go); --record appends the figures to bench/RESULTS.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

duration=10s connections=32 record=no
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --record) record=yes; shift ;;
    --bin) other_bin=$2; shift 2 ;;
    *) echo "usage: bench/server.sh [--duration 10s] [--connections 32] [--bin DIR] [--record]" >&2; exit 2 ;;
  esac
done

build_release
[ -z "${other_bin:-}" ] || bin=$other_bin
work=$(mktemp -d /tmp/stargate-bench-XXXXXX)
threads=2

# --- nginx with a fixed answer ---
nginx_port=$(free_port)
mkdir -p "$work/nginx"
body='{"processId":"PROC-20260114-00001","status":"completed","progress":100,"result":{"orderId":"ORD-12345","trackingNumber":"TRACK-123456"},"x":"pad"}'
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { default_type application/json; return 200 '$body'; }
  }
}
NGINX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)

# --- stargate-server ---
server_config() {  # server_config STEP_DURATION
  cat >"$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$work/server"
[engine]
workers = 1
[order]
step_duration = "$1"
[rate_limit]
per_minute = 10000000
burst = 10000000
TOML
}

server_config 0ms
start_server
provision "$work/server.toml"

run_wrk() {  # run_wrk URL [extra wrk args...]
  local url=$1; shift
  wrk -t"$threads" -c"$connections" -d"$duration" --latency "$@" "$url" | tee -a "$work/wrk.log" |
    wrk_figures
}

echo "nginx, fixed 150-byte JSON ..." >&2
read -r nginx_rps nginx_p50 nginx_p99 _ < <(run_wrk "http://127.0.0.1:$nginx_port/")
echo "GET status of a completed process ..." >&2
read -r get_rps get_p50 get_p99 get_bad < <(run_wrk \
  "http://127.0.0.1:$port/api/stargate/processes/$process" -H "Authorization: Bearer $token")

# POST: workers must not compete for the disk while the gateway is measured, so orders
# stay at their first step (1 h) and only one of them is picked up at a time.
stop_server
server_config 1h
start_server
cat >"$work/post.lua" <<LUA
local counter = 0
local prefix = tostring(math.random(1, 1000000000))
function setup(thread) thread:set("id", tostring(math.random(1, 1000000000))) end
request = function()
  counter = counter + 1
  local key = prefix .. "-" .. id .. "-" .. counter
  local body = '{"clientProcessId":"' .. key .. '","processType":"order","idempotencyKey":"' ..
               key .. '","data":$order}'
  return wrk.format("POST", "/api/stargate/processes",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $token"}, body)
end
LUA
echo "POST submit, a new idempotency key each ..." >&2
read -r post_rps post_p50 post_p99 post_bad < <(run_wrk "http://127.0.0.1:$port/" -s "$work/post.lua")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
summary=$(cat <<TXT
| case | req/s | p50 ms | p99 ms | vs nginx |
| --- | ---: | ---: | ---: | ---: |
| nginx, fixed 150-byte JSON | $nginx_rps | $nginx_p50 | $nginx_p99 | 100% |
| GET status (completed process) | $get_rps | $get_p50 | $get_p99 | $(ratio "$get_rps" "$nginx_rps") |
| POST submit (durable, new key each) | $post_rps | $post_p50 | $post_p99 | $(ratio "$post_rps" "$nginx_rps") |
TXT
)
echo "$summary"
[ "${get_bad:-0}" = 0 ] && [ "${post_bad:-0}" = 0 ] || echo "warning: non-2xx answers: GET $get_bad, POST $post_bad" >&2
if [ "$record" = yes ]; then
  {
    echo
    echo "### bench/server.sh — $(date -u +%Y-%m-%d)"
    echo
    echo "Command: \`bench/server.sh --duration $duration --connections $connections\`"
    echo "(wrk -t$threads -c$connections -d$duration on loopback; Release build). Machine: $(machine)."
    echo
    echo "$summary"
  } >>"$repo/bench/RESULTS.md"
fi
