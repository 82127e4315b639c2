#!/usr/bin/env bash
# The monitoring files against the real programs, with Prometheus's own tool (Debian's
# prometheus package, installed by scripts/bootstrap):
#  - packaging/prometheus/stargate-rules.yml passes `promtool check rules`, and its unit
#    tests (tests/prometheus/stargate-rules.test.yml) pass `promtool test rules`;
#  - after real traffic (an order through stargated to stargate-server and back, a
#    rate-limit refusal, a refused secret), both programs' /metrics pass
#    `promtool check metrics`;
#  - every PromQL expression of the Grafana dashboards (packaging/grafana/) parses, and the
#    dashboards and rules name only metrics and labels that the programs export.
# Usage: check.sh SOURCE_DIR BIN_DIR
set -euo pipefail
src=$1 bin=$2
command -v promtool >/dev/null || { echo "promtool is missing: run scripts/bootstrap" >&2; exit 1; }
promtool check rules "$src/packaging/prometheus/stargate-rules.yml"
(cd "$src/tests/prometheus" && promtool test rules stargate-rules.test.yml)

# shellcheck source=../support/stack.sh
. "$src/tests/support/stack.sh"
cat >"$work/server.toml" <<TOML
[server]
listen = "127.0.0.1:0"
state_dir = "$work/server"
[order]
step_duration = "50ms"
[rate_limit.tenants.tiny]
per_minute = 1
burst = 1
TOML
"$bin/stargate-server" serve --config "$work/server.toml" --port-file "$work/port" \
  >"$work/server.log" 2>&1 &
pids+=($!)
wait_for "[ -s '$work/port' ]" "$work/server.log"
url="http://127.0.0.1:$(cat "$work/port")"
client=$("$bin/stargate-server" client add --config "$work/server.toml" --tenant acme \
  --process-types order --secret-file "$work/secret")
tiny=$("$bin/stargate-server" client add --config "$work/server.toml" --tenant tiny \
  --process-types order --secret-file "$work/tiny-secret")
write_daemon_config "$url" "$client"
"$bin/stargated" --config "$work/stargated.toml" >"$work/daemon.log" 2>&1 &
pids+=($!)
wait_for "[ -S '$work/stargated.sock' ]" "$work/daemon.log"
"$bin/stargate" --socket "$work/stargated.sock" submit order --wait --timeout 60s \
  --data '{"orderId":"ORD-1","items":[{"sku":"SKU-001","quantity":1}]}' >/dev/null
# A refusal by the rate limit, and a refused secret.
token=$(curl -sf --data-urlencode grant_type=client_credentials --data-urlencode "client_id=$tiny" \
  --data-urlencode "client_secret=$(cat "$work/tiny-secret")" "$url/oauth/token" |
  sed -E 's/.*"access_token":"([^"]+)".*/\1/')
for _ in 1 2 3; do
  curl -s -o /dev/null -H "Authorization: Bearer $token" "$url/api/stargate/processes"
done
curl -s -o /dev/null -d "grant_type=client_credentials&client_id=$tiny&client_secret=wrong" \
  "$url/oauth/token"
curl -sf "$url/metrics" >"$work/server.metrics"
curl -sf --unix-socket "$work/stargated.sock" http://localhost/v1/metrics >"$work/daemon.metrics"
for page in server daemon; do
  echo "promtool check metrics: $page"
  promtool check metrics <"$work/$page.metrics"
done

python3 - "$src" "$work" <<'PY'
import glob, json, re, subprocess, sys
src, work = sys.argv[1], sys.argv[2]
names, labels = set(), {"job", "instance", "le", "__name__"}
for page in ("server", "daemon"):
    for line in open(f"{work}/{page}.metrics"):
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names.update({name + "_bucket", name + "_sum", name + "_count"})
        elif line.strip() and not line.startswith("#"):
            for label in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', line.split(" ")[0]):
                labels.add(label)
exprs = []  # (where, expr)
for path in sorted(glob.glob(f"{src}/packaging/grafana/*.json")):
    def walk(node, where):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append((f"{path.split('/')[-1]}: {where}", node["expr"]))
            for key, value in node.items():
                walk(value, node.get("title", where) if key == "targets" else where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)
    walk(json.load(open(path)), "")
rules_text = open(f"{src}/packaging/prometheus/stargate-rules.yml").read()
rule_exprs = re.findall(r"expr: \|\n((?:          .*\n)+)|expr: (.+)\n", rules_text)
for block, single in rule_exprs:
    exprs.append(("stargate-rules.yml", block or single))
if len(exprs) < 20:
    sys.exit(f"only {len(exprs)} expressions found: the dashboards or rules were not read")
problems = []
functions = {"sum", "rate", "increase", "deriv", "histogram_quantile", "max", "min", "by",
             "and", "or", "without", "label_values"}
for where, expr in exprs:
    for name in re.findall(r"\b(stargated?_[a-z0-9_]+)\b", expr):
        if name not in names:
            problems.append(f"{where}: {name} is not exported by either program")
    for group in re.findall(r"\bby \(([^)]*)\)", expr):
        for label in (l.strip() for l in group.split(",")):
            if label and label not in labels:
                problems.append(f"{where}: label {label} is on no exported series")
    for label in re.findall(r"[{,]\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!=|!~|=)", expr):
        if label not in labels:
            problems.append(f"{where}: label {label} is on no exported series")
# Every dashboard expression parses: promtool checks them as recording rules.
with open(f"{work}/dashboards.rules.yml", "w") as out:
    out.write("groups:\n  - name: dashboards\n    rules:\n")
    for i, (where, expr) in enumerate(exprs):
        concrete = expr.replace("$instance", ".*")
        out.write(f"      - record: dashboard:expr_{i}\n        expr: {json.dumps(concrete)}\n")
checked = subprocess.run(["promtool", "check", "rules", f"{work}/dashboards.rules.yml"],
                         capture_output=True, text=True)
if checked.returncode != 0:
    problems.append("an expression does not parse:\n" + checked.stdout + checked.stderr)
for problem in problems:
    print(problem, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"{len(exprs)} expressions parse and name only exported metrics and labels")
PY
