# Test support for the shell tests that run the real programs (tests/prometheus/check.sh,
# tests/journald/fields.sh): a work directory removed at exit, the processes started
# (recorded in `pids`, stopped by PID at exit), waiting for a condition, and the daemon's
# configuration for a gateway and client. Source it after `set -euo pipefail`.
work=$(mktemp -d)
pids=()
stack_cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stack_cleanup EXIT

# wait_for CONDITION [LOG]: true once CONDITION (evaluated) holds, within 30 s; else prints
# the condition and LOG (when given) and fails.
wait_for() {
  for _ in $(seq 300); do eval "$1" && return 0; sleep 0.1; done
  echo "timed out waiting for: $1" >&2
  if [ -n "${2:-}" ]; then cat "$2" >&2; fi
  return 1
}

# write_daemon_config URL CLIENT_ID: $work/stargated.toml for that gateway and client, with
# its secret in $work/secret, its queue and socket in $work.
write_daemon_config() {
  cat >"$work/stargated.toml" <<TOML
[gateway]
url = "$1"
[credentials]
client_id = "$2"
client_secret_file = "$work/secret"
[queue]
path = "$work/queue.db"
[socket]
path = "$work/stargated.sock"
TOML
}
