#!/bin/sh
# Fails when a manual page makes groff warn (-ww: all warnings), printing what it said.
status=0
for page in "$@"; do
  warnings=$(groff -man -ww -z "$page" 2>&1)
  if [ -n "$warnings" ]; then
    echo "$page:"; echo "$warnings"; status=1
  fi
done
exit $status
