#!/usr/bin/env bash
# Operating checks against a real broker process:
#  - /metrics is valid Prometheus text (promtool check metrics, Debian's prometheus package)
#    and its counters move when records flow;
#  - /health and /ready answer;
#  - the web console renders live data in headless Chromium (Debian's chromium): the
#    DOM shows the topic, its end offsets and a consumer group's lag;
#  - with --http-auth and the authorizer: 401 without a login, the console after one (HTTP
#    basic, credentials in the URL), a topic the user's ACLs hide left out, 403 on its records;
#  - the cluster page: a single broker says it is not clustered; against one etcd and 3 brokers
#    (tools/console/cluster-check.sh) it lists the brokers, the controller and every partition's
#    leader and ISR, and marks the partitions under-replicated once a broker is killed;
#  - a screenshot of each console page goes to .build/console-screenshots/.
# Installs promtool and chromium when missing. Bounded in time; kills what it starts.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v kcat >/dev/null 2>&1 || need+=(kcat)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Longest the cluster phase (etcd, 3 brokers, a kill) may take, in seconds.
CLUSTER_CHECK_SECONDS=240

spool="$root/.build/debug/spool"
[ -x "$spool" ] || swift build --product spool
shots="$root/.build/console-screenshots"
mkdir -p "$shots"
tmp=$(mktemp -d)
broker_pid=""
kcat_pids=()
cleanup() {
  for pid in "${kcat_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "console check FAILED: $*" >&2; echo "--- broker log:" >&2; tail -n 20 "$tmp/broker.out" "$tmp/broker.err" >&2 || true; exit 1; }

"$spool" broker --data-dir "$tmp/data" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-format json \
  >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 1 200); do grep -q "admin http://" "$tmp/broker.out" 2>/dev/null && break; sleep 0.05; done
grep -q "admin http://" "$tmp/broker.out" || fail "broker did not start"
port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\), data in.*/\1/p' "$tmp/broker.out" | head -1)
admin=$(sed -n 's|.*admin http://\([^/]*\)/.*|\1|p' "$tmp/broker.out" | head -1)
broker="127.0.0.1:$port"
echo "broker on $broker, admin on http://$admin/"

curl -fsS "http://$admin/health" >/dev/null || fail "/health"
curl -fsS "http://$admin/ready" >/dev/null || fail "/ready is not 200 once the broker is up"

# Records flow: 3 partitions, 600 records (17 keys), a group that reads 250 of them and
# then commits offset 10 on each partition (a known lag: 600 - 3 * 10).
records=600
committed=10
lag=$((records - 3 * committed))
"$spool" topic create orders --partitions 3 --config retention.ms=86400000 --broker "$broker" >/dev/null
seq 1 "$records" | awk '{ printf "order-%d {\"id\":%d,\"amount\":%d.50}\n", $1 % 17, $1, $1 * 3 }' |
  "$spool" produce orders --key-separator ' ' --broker "$broker" >/dev/null
timeout 30 "$spool" consume orders --group billing --from beginning --count 250 --broker "$broker" >/dev/null
"$spool" group reset billing --topic orders --to "$committed" --broker "$broker" >/dev/null

curl -fsS "http://$admin/metrics" >"$tmp/metrics.txt" || fail "/metrics"
promtool check metrics <"$tmp/metrics.txt" || fail "promtool check metrics found problems"
in_total=$(awk '/^spool_records_in_total\{topic="orders"\}/ { print $2 }' "$tmp/metrics.txt")
out_total=$(awk '/^spool_records_out_total\{topic="orders"\}/ { print $2 }' "$tmp/metrics.txt")
lag_total=$(awk '/^spool_consumer_group_lag\{group="billing"/ { s += $2 } END { print s + 0 }' "$tmp/metrics.txt")
[ "${in_total%.*}" = "$records" ] || fail "spool_records_in_total is '$in_total', expected $records"
[ "${out_total%.*}" -ge 250 ] || fail "spool_records_out_total is '$out_total', expected at least 250"
[ "$lag_total" = "$lag" ] || fail "spool_consumer_group_lag sums to '$lag_total', expected $lag"
grep -q '^spool_request_duration_seconds_count{listener="native",api="produce"}' "$tmp/metrics.txt" || fail "no produce latency histogram"
echo "metrics: promtool clean; records in $in_total, out $out_total, lag $lag_total"

# shellcheck source=chromium.sh
source tools/console/chromium.sh  # render URL NAME, expect NAME REGEX WHAT, expect_row

# Records into a second topic while the charts watch, so records/s is not zero (orders,
# and so the group's lag, stay as they are).
"$spool" topic create clicks --partitions 2 --broker "$broker" >/dev/null
( for i in $(seq 1 20); do seq 1 200 | "$spool" produce clicks --broker "$broker" >/dev/null; sleep 0.3; done ) &
feeder=$!

render "http://$admin/#/" overview
expect overview 'data-topic="orders"' "the topic"
expect overview 'data-group="billing"' "the group"
expect overview "data-test=\"group-lag\">$lag<" "the group's lag ($lag)"

render "http://$admin/#/topics/orders" topic
expect topic 'data-test="end-offset">[0-9,]+<' "partition end offsets"
expect topic 'data-offset="[0-9]+"' "records in the record browser"
expect topic 'order-[0-9]+' "a record key"

render "http://$admin/#/groups/billing" group
expect group 'data-test="lag">[0-9,]+<' "lag per partition"
expect group "data-test=\"group-lag\"><div class=\"label\">Total lag</div><div class=\"value\">$lag<" "the total lag"

# A live group: two Kafka consumers (kcat, librdkafka) split the topic; the console shows
# both members with their assignments.
kport=$(sed -n 's/.*Kafka clients: [^ ]*:\([0-9][0-9]*\).*/\1/p' "$tmp/broker.out" | head -1)
for _ in 1 2; do
  timeout 60 kcat -b "127.0.0.1:$kport" -G live orders -q >/dev/null 2>&1 &
  kcat_pids+=($!)
done
for _ in $(seq 1 150); do
  curl -fsS "http://$admin/v1/groups/live" 2>/dev/null | grep -q '"state":"Stable"' &&
    [ "$(curl -fsS "http://$admin/v1/groups/live" | grep -o '"memberId"' | wc -l)" = 2 ] && break
  sleep 0.2
done
render "http://$admin/#/groups/live" members
[ "$(grep -o 'data-test="member"' "$tmp/members.html" | wc -l)" = 2 ] || fail "the live group page does not show its 2 members"
expect members 'orders-[0-9], ?orders-[0-9]|orders-[0-9]</td>' "the members' assignments"
for pid in "${kcat_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
kcat_pids=()

render "http://$admin/#/broker" broker
expect broker "$port" "the native listener's port"
render "http://$admin/#/cluster" cluster-single
expect cluster-single 'data-test="not-clustered"[^>]*><b>Not clustered: this broker runs alone' "that it is not clustered"
grep -q 'data-broker=' "$tmp/cluster-single.html" && fail "the single broker's cluster page lists brokers"
wait "$feeder" || true

# The JSON API answers errors as JSON with a code.
code=$(curl -s -o "$tmp/err.json" -w '%{http_code}' "http://$admin/v1/topics/nope")
[ "$code" = 404 ] && grep -q '"code":"NOT_FOUND"' "$tmp/err.json" || fail "unknown topic gave $code $(cat "$tmp/err.json")"

kill -TERM "$broker_pid"
wait "$broker_pid" || fail "broker exited with an error after SIGTERM"
broker_pid=""
grep -q '"msg":"shutdown: storage closed cleanly"' "$tmp/broker.err" || fail "no clean shutdown in the JSON log"

# The console with a login (--http-auth) and the authorizer on: a second broker, a user made
# with `spool user create`, an ACL that keeps one topic to another user. Chromium logs in with
# credentials in the URL (the browser's HTTP basic); without them it gets a 401 and no page.
t0=$SECONDS
echo "alice-console-pw" | "$spool" user create alice --password-stdin --data-dir "$tmp/secure" >/dev/null
"$spool" broker --data-dir "$tmp/secure" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --authorizer --allow-everyone-if-no-acl-found true --http-auth --log-format json >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
for _ in $(seq 1 200); do grep -q "admin http://" "$tmp/broker.out" 2>/dev/null && break; sleep 0.05; done
grep -q "admin http://" "$tmp/broker.out" || fail "the broker with --http-auth did not start"
port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\), data in.*/\1/p' "$tmp/broker.out" | head -1)
kport=$(sed -n 's/.*Kafka clients: [^ ]*:\([0-9][0-9]*\).*/\1/p' "$tmp/broker.out" | head -1)
admin=$(sed -n 's|.*admin http://\([^/]*\)/.*|\1|p' "$tmp/broker.out" | head -1)
broker="127.0.0.1:$port"
for topic in orders payroll; do
  "$spool" topic create "$topic" --broker "$broker" >/dev/null
  seq 1 5 | awk -v t="$topic" '{ printf "%s-%d\n", t, $1 }' | "$spool" produce "$topic" --broker "$broker" >/dev/null
done
"$spool" acl add --kafka "127.0.0.1:$kport" --allow-principal User:admin --operation All --topic payroll >/dev/null

code=$(curl -s -o /dev/null -w '%{http_code}' "http://$admin/v1/topics")
[ "$code" = 401 ] || fail "/v1/topics without a login gave $code, expected 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -u alice:wrong "http://$admin/")
[ "$code" = 401 ] || fail "the console with a wrong password gave $code, expected 401"
curl -fsS "http://$admin/metrics" >/dev/null || fail "/metrics is not open with --http-auth"
code=$(curl -s -o "$tmp/err.json" -w '%{http_code}' -u alice:alice-console-pw "http://$admin/v1/topics/payroll/partitions/0/records")
[ "$code" = 403 ] && grep -q '"code":"FORBIDDEN"' "$tmp/err.json" || fail "reading payroll as alice gave $code $(cat "$tmp/err.json")"

"$spool" broker info --admin "$admin" >/dev/null 2>"$tmp/info.err" && fail "spool broker info without a login succeeded"
grep -q UNAUTHENTICATED "$tmp/info.err" || fail "spool broker info without a login: $(cat "$tmp/info.err")"
echo alice-console-pw | "$spool" broker info --admin "$admin" --admin-user alice --admin-password-stdin | grep -q '^topics	1$' ||
  fail "spool broker info --admin-user alice does not show the one topic alice may see"
render "http://alice:alice-console-pw@$admin/#/" secure-overview
expect secure-overview 'data-topic="orders"' "the topic after logging in"
expect secure-overview 'data-test="principal"[^>]*>User:alice<' "who is logged in"
grep -q 'data-topic="payroll"' "$tmp/secure-overview.html" && fail "the console shows alice a topic her ACLs hide"
render "http://alice:alice-console-pw@$admin/#/topics/orders" secure-topic
expect secure-topic 'orders-[0-9]' "records of orders in the record browser"
render "http://$admin/#/" secure-anonymous
grep -q 'data-topic=' "$tmp/secure-anonymous.html" && fail "the console shows topics without a login"
grep -q '"msg":"authentication failed"' "$tmp/broker.err" || fail "no authentication failure in the log"
kill -TERM "$broker_pid"
wait "$broker_pid" || fail "the broker with --http-auth exited with an error after SIGTERM"
broker_pid=""
echo "console login check passed in $((SECONDS - t0)) s"

# The cluster page against 3 brokers and an etcd, through a broker's kill (its own script).
t0=$SECONDS
timeout --kill-after=10 "$CLUSTER_CHECK_SECONDS" tools/console/cluster-check.sh "$spool" "$shots" ||
  { echo "console check FAILED: the cluster page (tools/console/cluster-check.sh)" >&2; exit 1; }
echo "console cluster check passed in $((SECONDS - t0)) s"
echo "console check passed; screenshots in $shots"
