# Shared by the benchmark scripts: the Release build, free ports, process cleanup, wrk
# output parsing and the machine description that goes next to every figure.
# Sourced, not run.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$repo/build-release/bin"

# Benchmarks measure an optimised build of their own, not the sanitizer build of the tests.
build_release() {
  "$repo/scripts/bootstrap" bench
  if [ ! -f "$repo/build-release/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$repo/build-release" -DCMAKE_BUILD_TYPE=Release -DSTARGATE_TESTS=OFF \
      -DSTARGATE_BENCH=ON >/dev/null
  fi
  cmake -S "$repo" -B "$repo/build-release" -DSTARGATE_BENCH=ON >/dev/null
  cmake --build "$repo/build-release" -j"$(nproc)" \
    --target stargate stargated stargate-server stargate-socket-load stargate-mongo-load >/dev/null
}

# A port nobody listens on right now (the kernel's choice for an ephemeral bind).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

pids=()
work=""
cleanup() {
  # Every step may fail harmlessly (a process already stopped): never abort half way.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

wait_for() {  # wait_for CONDITION [SECONDS]
  local limit=$(( ${2:-30} * 10 ))
  for _ in $(seq "$limit"); do eval "$1" && return 0; sleep 0.1; done
  echo "bench: timed out waiting for: $1" >&2
  return 1
}

# The scale-out backend's engines for a run, in $work: a redis-server, and FerretDB (built by
# scripts/bootstrap-ferretdb) unless STARGATE_BENCH_MONGODB_URI names a mongod. FerretDB keeps
# its data in SQLite files, or with STARGATE_BENCH_FERRETDB=postgresql in a PostgreSQL cluster
# of the run's own (Debian's postgresql, fsync and synchronous commit on, run as the user
# postgres when started as root). Sets redis_port, mongo_uri (database "stargate") and
# mongo_name.
start_engines() {
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --dir "$work" \
    >"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_for "redis-cli -p $redis_port ping >/dev/null 2>&1"
  if [ -n "${STARGATE_BENCH_MONGODB_URI:-}" ]; then
    mongo_uri=$STARGATE_BENCH_MONGODB_URI
    mongo_name="mongod ($mongo_uri)"
    return 0
  fi
  "$repo/scripts/bootstrap-ferretdb"
  local ferretdb="${STARGATE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/stargate/tools}/ferretdb-v1.24.2/ferretdb"
  local mongo_port handler
  mongo_port=$(free_port)
  mkdir -p "$work/mongo"
  case "${STARGATE_BENCH_FERRETDB:-sqlite}" in
    sqlite)
      handler=(--handler=sqlite --sqlite-url="file:$work/mongo/")
      mongo_name="FerretDB 1.24.2, SQLite handler"
      ;;
    postgresql)
      start_postgresql
      handler=(--handler=postgresql --postgresql-url="postgres://stargate@127.0.0.1:$pg_port/ferretdb")
      mongo_name="FerretDB 1.24.2, PostgreSQL handler ($pg_version)"
      ;;
    *) echo "bench: STARGATE_BENCH_FERRETDB is sqlite or postgresql" >&2; exit 2 ;;
  esac
  "$ferretdb" "${handler[@]}" --state-dir="$work/mongo" \
    --listen-addr="127.0.0.1:$mongo_port" --telemetry=disable --debug-addr=- --log-level=warn \
    >"$work/ferretdb.log" 2>&1 &
  pids+=($!)
  wait_for "(exec 3<>/dev/tcp/127.0.0.1/$mongo_port) 2>/dev/null"
  mongo_uri="mongodb://127.0.0.1:$mongo_port/stargate"
}

# A PostgreSQL cluster in $work/pg on a free loopback port, with a database "ferretdb" that
# the role "stargate" owns (trust on loopback: the run's own throwaway cluster). Sets pg_port
# and pg_version; the postmaster's PID goes to pids.
start_postgresql() {
  local pgbin as=()
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$pgbin/postgres" ] || { echo "bench: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
  pg_port=$(free_port)
  mkdir -p "$work/pg"
  if [ "$(id -u)" = 0 ]; then
    # initdb and postgres refuse root; setpriv execs, so the PID is the postmaster's.
    chmod 711 "$work" && chown postgres: "$work/pg"
    as=(setpriv --reuid=postgres --regid=postgres --init-groups)
  fi
  "${as[@]}" "$pgbin/initdb" -D "$work/pg/data" -A trust -U stargate >"$work/pg/initdb.log" 2>&1 ||
    { cat "$work/pg/initdb.log" >&2; exit 1; }
  "${as[@]}" "$pgbin/postgres" -D "$work/pg/data" -p "$pg_port" -k "$work/pg" \
    -c listen_addresses=127.0.0.1 >"$work/pg/postgres.log" 2>&1 &
  pids+=($!)
  wait_for "'$pgbin/pg_isready' -q -h 127.0.0.1 -p $pg_port"
  "$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U stargate ferretdb
  pg_version=$("$pgbin/postgres" --version | sed 's/^postgres (PostgreSQL) /PostgreSQL /')
}

# Starts the Release stargate-server on $work/server.toml (a free port) as `serve`, or as
# ROLE (gateway): sets server_pid and port.
start_server() {  # start_server [ROLE]
  rm -f "$work/port"
  "$bin/stargate-server" --log-level warn "${1:-serve}" --config "$work/server.toml" \
    --port-file "$work/port" >>"$work/server.log" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  wait_for "[ -s '$work/port' ]" || { cat "$work/server.log" >&2; exit 1; }
  port=$(cat "$work/port")
}
stop_server() { kill -TERM "$server_pid"; wait "$server_pid" 2>/dev/null || true; }

# provision CONFIG: adds a client of tenant bench to the server on $port, takes a token and
# submits one order, waiting until it completes. Sets client_id, token, order and process.
provision() {
  client_id=$("$bin/stargate-server" client add --config "$1" --tenant bench \
    --process-types order --secret-file "$work/secret")
  token=$(curl -s -d grant_type=client_credentials -d "client_id=$client_id" \
    --data-urlencode "client_secret=$(cat "$work/secret")" "http://127.0.0.1:$port/oauth/token" |
    sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  order='{"orderId":"ORD-12345","items":[{"sku":"SKU-001","quantity":10}]}'
  process=$(curl -s -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"clientProcessId\":\"bench-0\",\"processType\":\"order\",\"data\":$order}" \
    "http://127.0.0.1:$port/api/stargate/processes" | sed -E 's/.*"processId":"([^"]+)".*/\1/')
  wait_for "curl -s -H 'Authorization: Bearer $token' http://127.0.0.1:$port/api/stargate/processes/$process | grep -q completed"
}

# Reads wrk --latency output on stdin; prints "requests/s p50 p99" (latencies in ms).
wrk_figures() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec:/ { rps = $2 }
    $1 == "50.000%" || $1 == "50%" { p50 = ms($2) }
    $1 == "99.000%" || $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { bad = $5 }
    END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad }'
}

machine() {
  echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(. /etc/os-release; echo "$PRETTY_NAME")"
}
