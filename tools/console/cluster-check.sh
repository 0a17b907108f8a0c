#!/usr/bin/env bash
# The console's cluster page against a real 3-broker cluster, in headless Chromium: one etcd
# (Debian's etcd-server) and three `spool broker --etcd` processes on loopback ephemeral ports
# (lease TTL 3 s), a topic with 2 partitions at replication factor 3, then
#   1. a broker that is not the controller shows 3 live brokers, the controller and itself
#      marked, and both partitions with a leader and a 3-member ISR;
#   2. the third broker killed (-9): once its lease is gone, the page shows 2 live brokers, both
#      partitions under-replicated with a 2-member ISR, the dead replica marked offline.
# Screenshots go to SHOTS (cluster.png, cluster-degraded.png). Every wait is bounded (check.sh
# also runs it under `timeout`); kills what it starts.
# Called by tools/console/check.sh.
# Usage: tools/console/cluster-check.sh path/to/spool SHOTS_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
spool=${1:?spool binary}
shots=${2:?screenshot directory}
command -v etcd >/dev/null || tools/install-deps.sh >/dev/null || { echo "etcd is missing" >&2; exit 1; }
mkdir -p "$shots"

# Explicit limits (seconds): a broker joining, the cluster reaching a state, the brokers' etcd
# lease (how soon a killed broker counts as gone).
JOIN_SECONDS=30
SETTLE_SECONDS=45
LEASE_TTL_SECONDS=3

tmp=$(mktemp -d)
declare -A pid_of native_of admin_of
etcd_pid=""
cleanup() {
  local pid
  for pid in "${pid_of[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [ -n "$etcd_pid" ] && kill -9 "$etcd_pid" 2>/dev/null || true
  { wait; } 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "console cluster check FAILED: $*" >&2
  local id
  for id in "${!pid_of[@]}"; do
    echo "--- broker $id log:" >&2
    # A crash's reason comes before its long backtrace: show it first.
    grep -m 5 -E "Fatal error|Program crashed|Precondition failed|Assertion failed|crashed:" "$tmp/broker$id.log" >&2 || true
    tail -n 15 "$tmp/broker$id.log" >&2 || true
    # SPOOL_KEEP_LOGS=DIR keeps the whole logs (the temporary folder goes on exit).
    if [ -n "${SPOOL_KEEP_LOGS:-}" ]; then mkdir -p "$SPOOL_KEEP_LOGS" && cp "$tmp/broker$id.log" "$SPOOL_KEEP_LOGS/" || true; fi
  done
  exit 1
}
# check.sh runs this under `timeout` (SIGTERM): exit, so the EXIT trap stops everything.
trap 'echo "console cluster check: stopped by a signal" >&2; exit 1' TERM INT

# shellcheck source=chromium.sh
source tools/console/chromium.sh  # render URL NAME, expect NAME REGEX WHAT, expect_row NAME SELECTOR REGEX WHAT

# shellcheck source=../test-etcd.sh
source tools/test-etcd.sh
start_test_etcd "$tmp" || fail "etcd did not start"
endpoint=$etcd_endpoint

cluster_id="console-$RANDOM"
for id in 1 2 3; do
  "$spool" broker --data-dir "$tmp/broker$id" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --node-id "$id" --etcd "$endpoint" --cluster-id "$cluster_id" --cluster-lease-ttl-seconds "$LEASE_TTL_SECONDS" \
    >"$tmp/broker$id.log" 2>&1 &
  pid_of[$id]=$!
done
deadline=$((SECONDS + JOIN_SECONDS))
for id in 1 2 3; do
  until grep -q "registered in cluster" "$tmp/broker$id.log"; do
    kill -0 "${pid_of[$id]}" 2>/dev/null || fail "broker $id exited"
    ((SECONDS < deadline)) || fail "broker $id did not join within $JOIN_SECONDS s"
    sleep 0.1
  done
  native_of[$id]=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\), data in.*/\1/p' "$tmp/broker$id.log" | head -1)
  admin_of[$id]=$(sed -n 's|.*admin http://\([^/]*\)/.*|\1|p' "$tmp/broker$id.log" | head -1)
  [ -n "${native_of[$id]}" ] && [ -n "${admin_of[$id]}" ] || fail "no native or admin address in broker $id's log"
done
echo "cluster $cluster_id: etcd $endpoint; admin http://${admin_of[1]}/ http://${admin_of[2]}/ http://${admin_of[3]}/"

# settle ID WHAT PYTHON: waits until broker ID's /v1/cluster (as `c`, parsed) makes PYTHON true.
settle() {
  local deadline=$((SECONDS + SETTLE_SECONDS))
  until curl -fsS "http://${admin_of[$1]}/v1/cluster" 2>/dev/null | python3 -c "import json, sys; c = json.load(sys.stdin); sys.exit(0 if ($3) else 1)" 2>/dev/null; do
    ((SECONDS < deadline)) || { curl -sS "http://${admin_of[$1]}/v1/cluster" >&2 || true; echo >&2; fail "broker $1's /v1/cluster never showed $2 ($SETTLE_SECONDS s)"; }
    sleep 0.2
  done
}
field() { curl -fsS "http://${admin_of[$1]}/v1/cluster" | python3 -c "import json, sys; c = json.load(sys.stdin); print($2)"; }

"$spool" topic create t --partitions 2 --replication-factor 3 --broker "127.0.0.1:${native_of[1]}" >/dev/null ||
  fail "spool topic create t --replication-factor 3"
whole='len(c["brokers"]) == 3 and c["controllerId"] > 0 and len(c["partitions"]) == 2 and all(p["leader"] > 0 and len(p["isr"]) == 3 for p in c["partitions"])'
settle 1 "3 brokers, a controller and t's 2 partitions led with a full ISR" "$whole"
controller=$(field 1 'c["controllerId"]')
# The page is read on a broker that is not the controller (so "this broker" and "controller"
# mark different rows); the third broker is the one killed.
viewer=$(( controller % 3 + 1 ))
victim=$(( viewer % 3 + 1 ))
settle "$viewer" "the same" "$whole and c[\"controllerId\"] == $controller"
"$spool" cluster status --etcd "$endpoint" --cluster-id "$cluster_id" | sed 's/^/  /'
echo "controller $controller; the page read on broker $viewer; broker $victim to be killed"

page="http://${admin_of[$viewer]}/#/cluster"
render "$page" cluster
expect cluster 'data-test="live-brokers"><div class="label">Live brokers</div><div class="value">3<' "3 live brokers"
expect cluster "data-test=\"this-node\"><div class=\"label\">This broker</div><div class=\"value\">$viewer<" "this broker's node id"
expect cluster "data-test=\"controller\"><div class=\"label\">Controller</div><div class=\"value\">$controller<" "the controller's node id"
expect cluster 'data-test="under-replicated"><div class="label">Under-replicated</div><div class="value">0<' "no under-replicated partition"
[ "$(rows cluster 'data-broker=' | wc -l)" = 3 ] || fail "the cluster page does not list 3 brokers"
for id in 1 2 3; do expect_row cluster "data-broker=\"$id\"" "<code>127\\.0\\.0\\.1:[0-9]+</code>" "broker $id's Kafka address"; done
expect_row cluster "data-broker=\"$controller\"" 'data-test="is-controller"' "the controller mark"
expect_row cluster "data-broker=\"$viewer\"" 'data-test="is-this-broker"' "the this-broker mark"
[ "$(grep -o 'data-test="is-controller"' "$tmp/cluster.html" | wc -l)" = 1 ] || fail "not exactly one broker marked controller"
[ "$(grep -o 'data-test="is-this-broker"' "$tmp/cluster.html" | wc -l)" = 1 ] || fail "not exactly one broker marked this broker"
for p in 0 1; do
  expect_row cluster "class=\"ok\" data-partition=\"t-$p\"" 'data-test="leader">[1-3]<' "t-$p's leader"
  expect_row cluster "class=\"ok\" data-partition=\"t-$p\"" 'data-test="isr" data-count="3">[1-3], [1-3], [1-3]<' "t-$p's 3-member ISR"
  expect_row cluster "class=\"ok\" data-partition=\"t-$p\"" 'badge ok">in sync<' "t-$p in sync"
done
echo "cluster page: 3 brokers, controller $controller, this broker $viewer, t-0 and t-1 led with a 3-member ISR"

kill -9 "${pid_of[$victim]}"
{ wait "${pid_of[$victim]}"; } 2>/dev/null || true
unset "pid_of[$victim]"
t0=$SECONDS
settle "$viewer" "broker $victim gone and t under-replicated" \
  "len(c[\"brokers\"]) == 2 and c[\"underReplicatedPartitions\"] == 2 and all(p[\"leader\"] > 0 and p[\"leader\"] != $victim and len(p[\"isr\"]) == 2 and not p[\"offline\"] for p in c[\"partitions\"])"
echo "broker $victim killed; /v1/cluster shows it gone after $((SECONDS - t0)) s"
"$spool" cluster status --etcd "$endpoint" --cluster-id "$cluster_id" | sed 's/^/  /'

render "$page" cluster-degraded
expect cluster-degraded 'data-test="live-brokers"><div class="label">Live brokers</div><div class="value">2<' "2 live brokers"
expect cluster-degraded 'data-test="under-replicated"><div class="label">Under-replicated</div><div class="value"><span class="lag">2<' "2 under-replicated partitions"
[ "$(rows cluster-degraded 'data-broker=' | wc -l)" = 2 ] || fail "the degraded cluster page does not list 2 brokers"
[ -z "$(rows cluster-degraded "data-broker=\"$victim\"")" ] || fail "the degraded cluster page still lists broker $victim"
for p in 0 1; do
  row="class=\"under-replicated\" data-partition=\"t-$p\" data-state=\"under-replicated\""
  expect_row cluster-degraded "$row" 'badge warn">under-replicated<' "t-$p's under-replicated mark"
  expect_row cluster-degraded "$row" 'data-test="isr" data-count="2">' "t-$p's 2-member ISR"
  expect_row cluster-degraded "$row" "class=\"replica offline\" data-replica=\"$victim\"" "broker $victim's replica of t-$p marked offline"
  expect_row cluster-degraded "$row" "data-test=\"leader\">[1-3]<" "t-$p's leader"
done
echo "degraded cluster page: 2 brokers, t-0 and t-1 under-replicated, broker $victim's replicas marked offline"

for id in "${!pid_of[@]}"; do kill -TERM "${pid_of[$id]}"; done
for id in "${!pid_of[@]}"; do wait "${pid_of[$id]}" || fail "broker $id exited with an error after SIGTERM"; done
pid_of=()
echo "console cluster check passed"
