#!/usr/bin/env bash
# The programs' records in a real journal: a private systemd-journald (in a mount namespace
# of its own, with /run and the journal directories on tmpfs, so the host's journal is not
# touched) receives stargate-server's and stargated's records while an order goes through
# both; their stderr is a journal stream, with $JOURNAL_STREAM naming it as systemd does
# for a service. journalctl then reads the fields back from the journal files:
#  - one request's story by CLIENT_PROCESS_ID=, in both programs, with PROCESS_ID= and
#    CORRELATION_ID= on the records that know them, and TENANT= on the server's;
#  - PRIORITY= matches the level (a warning is 4), SYSLOG_IDENTIFIER= names the program;
#  - a hostile correlation id is not a field of anyone's record, and values never hold a
#    line break.
# Usage: fields.sh SOURCE_DIR BIN_DIR (as root: it needs a mount namespace)
set -euo pipefail
src=$1 bin=$2
if [ -z "${STARGATE_JOURNAL_NS:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "needs root for a mount namespace (unshare -m)" >&2; exit 1; }
  exec env STARGATE_JOURNAL_NS=1 unshare --mount --propagation private "$0" "$@"
fi
journald=/lib/systemd/systemd-journald
[ -x "$journald" ] || { echo "$journald is missing (Debian package systemd)" >&2; exit 1; }

# shellcheck source=../support/stack.sh
. "$src/tests/support/stack.sh"
mount -t tmpfs tmpfs /run
for dir in /var/log/journal; do [ -d "$dir" ] && mount -t tmpfs tmpfs "$dir"; done
mkdir -p /run/systemd/journal /run/log/journal
"$journald" >"$work/journald.log" 2>&1 &
pids+=($!)
wait_for "[ -S /run/systemd/journal/stdout ] && [ -S /run/systemd/journal/socket ]" "$work/journald.log"

# Runs a program with stderr and stdout on a journal stream, as a systemd service would.
# Started with & it is the program itself (systemd-cat and sh each exec the next), so that
# the PID in $! is the one stack_cleanup stops.
as_service() {  # as_service IDENTIFIER COMMAND...
  local identifier=$1; shift
  exec systemd-cat --identifier="$identifier" sh -c \
    'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"' sh "$@"
}

cat >"$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$work/server"
[order]
step_duration = "50ms"
TOML
as_service stargate-server "$bin/stargate-server" serve --config "$work/server.toml" \
  --port-file "$work/port" &
pids+=($!)
wait_for "[ -s '$work/port' ]"
url="http://127.0.0.1:$(cat "$work/port")"
client=$("$bin/stargate-server" client add --config "$work/server.toml" --tenant acme \
  --process-types order --secret-file "$work/secret" 2>/dev/null)
write_daemon_config "$url" "$client"
as_service stargated "$bin/stargated" --config "$work/stargated.toml" &
pids+=($!)
wait_for "[ -S '$work/stargated.sock' ]"
"$bin/stargate" --socket "$work/stargated.sock" submit order --id journal-order-1 --wait \
  --timeout 60s --data '{"orderId":"ORD-1","items":[{"sku":"SKU-001","quantity":1}]}' >/dev/null
# A warning (a refused secret, logged by the server at level warn), and a hostile
# correlation id (a line break and a field of its own), which the gateway replaces.
curl -s -o /dev/null -H $'X-Correlation-ID: x\nPROCESS_ID=forged' \
  -d "grant_type=client_credentials&client_id=$client&client_secret=wrong" "$url/oauth/token"
curl -s -o /dev/null -d "grant_type=client_credentials&client_id=$client&client_secret=wrong" \
  -H "X-Correlation-ID: warn-me" "$url/oauth/token"
# (No `grep -q` after a pipe: with pipefail, the writer's SIGPIPE would fail the check.)
# journald writes what it received: wait until the last record is in the file.
read_journal() { journalctl --file "/run/log/journal/*/*.journal" --no-pager -o json "$@"; }
wait_for "read_journal CORRELATION_ID=warn-me | grep . >/dev/null"

fail=0
check() {  # check WHAT COMMAND...
  if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1" >&2; fail=1; fi
}
story=$(read_journal CLIENT_PROCESS_ID=journal-order-1)
story_told() {
  echo "$story" | python3 -c '
import json, sys
records = [json.loads(line) for line in sys.stdin if line.strip()]
by = {}
for r in records:
    by.setdefault(r["SYSLOG_IDENTIFIER"], []).append(r)
assert set(by) == {"stargated", "stargate-server"}, sorted(by)
daemon, server = by["stargated"], by["stargate-server"]
# The daemon: queued, sent and accepted as PROC-..., and its end; the correlation id it sent.
texts = " | ".join(r["MESSAGE"] for r in daemon)
for words in ("queued journal-order-1", "accepted as PROC-", "-> completed"):
    assert words in texts, (words, texts)
process_ids = {r.get("PROCESS_ID") for r in daemon + server} - {None}
assert len(process_ids) == 1, process_ids
process_id = process_ids.pop()
assert process_id.startswith("PROC-"), process_id
assert all(r["CORRELATION_ID"] == "journal-order-1" for r in daemon + server)
# The server: the request (tenant known), the engine running it, its completion.
texts = " | ".join(r["MESSAGE"] for r in server)
for words in ("accepted order for tenant acme", "order started", "completed in"):
    assert words in texts, (words, texts)
assert all(r.get("TENANT") == "acme" for r in server), server
assert all(r["PRIORITY"] == "6" for r in records), [r["PRIORITY"] for r in records]
print(f"{len(daemon)} daemon and {len(server)} server records of {process_id}")
'
}
check "one request's story by CLIENT_PROCESS_ID in both programs" story_told
by_process=$(echo "$story" | python3 -c '
import json, sys
print({json.loads(l).get("PROCESS_ID") for l in sys.stdin if l.strip()} - {None})' | tr -d "{}'")
engine_found() { read_journal PROCESS_ID="$by_process" SYSLOG_IDENTIFIER=stargate-server |
  grep 'order started' >/dev/null; }
check "PROCESS_ID=$by_process finds the engine's records" engine_found
warning_found() { read_journal CORRELATION_ID=warn-me PRIORITY=4 |
  grep 'client authentication failed' >/dev/null; }
check "a warning has PRIORITY=4" warning_found
not_forged() { ! read_journal PROCESS_ID=forged | grep . >/dev/null; }
check "a hostile correlation id is not a field" not_forged
# In journalctl's export format a value with a line break is written as a bare field name
# followed by its length in binary.
one_line_values() {
  ! journalctl --file "/run/log/journal/*/*.journal" -o export SYSLOG_IDENTIFIER=stargated \
    + SYSLOG_IDENTIFIER=stargate-server | grep -aE '^[A-Z_]+$' >/dev/null
}
check "no value holds a line break" one_line_values
exit $fail
