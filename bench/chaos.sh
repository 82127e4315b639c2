#!/usr/bin/env bash
# The long form of the chaos run (tests/chaos/chaos.cpp; its short form runs in
# scripts/test): 1,000 submissions while the Release daemon is killed with SIGKILL 40 times
# and the server 10 times, with 20% packet loss and 200 ms delay each way between them.
# Prints the verdict: acknowledged, lost, duplicated, out of order.
# Usage: bench/chaos.sh [--submissions N] [--daemon-kills N] [--server-kills N]
#                       [--loss PERCENT] [--delay-ms MS] [--record]
#   --record appends the verdict to bench/RESULTS.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

args=(--submissions 1000 --daemon-kills 40 --server-kills 10 --loss 20 --delay-ms 200)
record=no extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --record) record=yes; shift ;;
    --submissions|--daemon-kills|--server-kills|--loss|--delay-ms|--seed) extra+=("$1" "$2"); shift 2 ;;
    *) echo "usage: bench/chaos.sh [--submissions N] [--daemon-kills N] [--server-kills N] [--loss PERCENT] [--delay-ms MS] [--seed N] [--record]" >&2; exit 2 ;;
  esac
done

build_release
"$repo/scripts/build" --target stargate-chaos >/dev/null
out=$(mktemp /tmp/stargate-chaos-XXXXXX)
work="$out"
set +e
"$repo/build/bin/stargate-chaos" --bin "$bin" --limit 7200 "${args[@]}" "${extra[@]}" | tee "$out"
status=${PIPESTATUS[0]}
set -e
if [ "$record" = yes ]; then
  {
    echo
    echo "### Chaos run, long form ($(date -u +%Y-%m-%d))"
    echo
    echo "Command: \`bench/chaos.sh${extra[*]:+ ${extra[*]}}\` (stargate-chaos ${args[*]}${extra[*]:+ ${extra[*]}}; Release binaries); machine: $(machine)."
    echo
    grep -E '^chaos: ([0-9]+ submissions by|acknowledged|network faults skipped|packet loss skipped)' "$out" | sed 's/^chaos: /- /'
    [ "$status" -eq 0 ] || echo "- FAILED (exit $status)"
  } >>"$repo/bench/RESULTS.md"
fi
exit "$status"
