#!/usr/bin/env bash
# Validates the OpenAPI documents given as arguments with an independent validator
# (openapi-spec-validator, from PyPI, installed by scripts/bootstrap), then checks that it
# refuses a document with a broken reference, so that a validator that accepts anything
# cannot pass this test.
set -euo pipefail
tools="${STARGATE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/stargate/tools}"
validator="$tools/python/bin/openapi-spec-validator"
if [ ! -x "$validator" ]; then
  echo "openapi-spec-validator is not in $tools/python: run scripts/bootstrap" >&2
  exit 1
fi
for document in "$@"; do
  "$validator" --schema 3.1 "$document"
done
broken="$(mktemp)"
trap 'rm -f "$broken"' EXIT
sed 's|#/components/schemas/ProcessStatus"|#/components/schemas/NoSuchSchema"|' "$1" >"$broken"
if "$validator" --schema 3.1 "$broken" >/dev/null 2>&1; then
  echo "the validator accepted a document with a broken reference" >&2
  exit 1
fi
echo "the validator refuses a broken reference, as it should"
