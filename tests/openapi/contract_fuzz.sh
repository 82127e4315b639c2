#!/usr/bin/env bash
# Contract fuzzing of the gateway with schemathesis: starts the real stargate-server on a
# free loopback port with an embedded store, adds a client, takes a token and lets
# schemathesis send what the OpenAPI document allows and what it does not (its examples,
# boundary values, random cases and stateful sequences). Fails on any 5xx, any answer that
# does not match its documented status, headers and schema, a schema-violating request
# accepted, a wrong answer to an undeclared method, or a server that is no longer up.
# Not checked: that every schema-valid request is accepted (an unknown cursor, a reused
# idempotency key or a type the token may not use are refused by design).
# Usage: contract_fuzz.sh BIN_DIR [EXAMPLES_PER_OPERATION [SEED]]
set -euo pipefail
bin=$1 examples=${2:-20} seed=${3:-1}
tools="${STARGATE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/stargate/tools}"
schemathesis="$tools/python/bin/schemathesis"
if [ ! -x "$schemathesis" ]; then
  echo "schemathesis is not in $tools/python: run scripts/bootstrap" >&2
  exit 1
fi
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$work/server"
[rate_limit]
per_minute = 1000000
burst = 100000
[order]
step_duration = "50ms"
TOML
"$bin/stargate-server" serve --config "$work/server.toml" --port-file "$work/port" \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/server.log" >&2; exit 1; }
url="http://127.0.0.1:$(cat "$work/port")"
client=$("$bin/stargate-server" client add --config "$work/server.toml" --tenant fuzz \
  --process-types order,shipping --secret-file "$work/secret")
token=$(curl -sf --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$client" \
  --data-urlencode "client_secret=$(cat "$work/secret")" "$url/oauth/token" |
  sed -E 's/.*"access_token":"([^"]+)".*/\1/')
[ -n "$token" ] || { echo "no token" >&2; exit 1; }
status=0
(cd "$work" && "$schemathesis" run "$url/api/stargate/openapi.json" \
  --header "Authorization: Bearer $token" --max-examples "$examples" --seed "$seed" \
  --exclude-checks positive_data_acceptance --generation-database none --no-color \
  --request-timeout 20) || status=$?
if ! curl -sf "$url/health/live" >/dev/null; then
  echo "the gateway is no longer up:" >&2
  tail -20 "$work/server.log" >&2
  exit 1
fi
if grep -E '^[0-9-]+ [0-9:.]+ (error|critical) ' "$work/server.log" >&2; then
  echo "the gateway logged errors (above)" >&2
  status=1
fi
exit "$status"
