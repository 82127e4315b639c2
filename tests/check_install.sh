#!/bin/sh
# Installs the build into a scratch prefix and checks that every file a user needs is there.
# Usage: check_install.sh CMAKE BUILD_DIR
set -eu
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
"$1" --install "$2" --prefix "$prefix" >/dev/null
status=0
for file in bin/stargate sbin/stargated sbin/stargate-server \
            share/man/man1/stargate.1 share/man/man8/stargated.8 \
            share/man/man5/stargated.toml.5 share/man/man8/stargate-server.8 \
            share/bash-completion/completions/stargate \
            share/zsh/vendor-completions/_stargate \
            share/fish/vendor_completions.d/stargate.fish \
            share/stargate-server/openapi/gateway.json \
            share/stargate/openapi/stargated.json \
            share/stargate-server/prometheus/stargate-rules.yml \
            share/stargate-server/grafana/stargate-gateway.json \
            share/stargate-server/grafana/stargate-daemons.json; do
  if [ ! -e "$prefix/$file" ]; then echo "missing: $file"; status=1; fi
done
exit $status
