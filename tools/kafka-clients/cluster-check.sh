#!/usr/bin/env bash
# Kafka clients against a 3-broker Spool cluster through leader kills: one etcd (Debian's) and
# three `spool broker --etcd` processes on loopback ephemeral ports (lease TTL 3 s), then
#   1. confluent-kafka: idempotent acks=all load (RF 3, min ISR 2) through a kill -9 of
#      partition 0's leader; every acknowledged record read back once, at its offset;
#   2. the killed broker restarted (it rejoins and catches up), then the same with
#      kafka-python's producer and a kafka-python consumer reading across the kill;
#   2b. restarted again, aiokafka's idempotent producer through a kill, read back by aiokafka;
#   3. restarted again, kcat producing 3,000 lines (idempotent, acks=all) through a kill of
#      the leader, and kcat reading every line back exactly once;
#   3b. restarted again, a confluent-kafka consumer group through a kill -9 of its coordinator:
#      a new member resumes exactly after the committed offsets;
#   4. SIGSTOP: a follower stopped past replica.lag.time.max.ms (3 s here) leaves the ISR and
#      rejoins once resumed; both followers stopped → NOT_ENOUGH_REPLICAS, nothing appended.
# Called by check.sh (which sets up kcat and the Python venv).
# Usage: tools/kafka-clients/cluster-check.sh path/to/spool path/to/venv/python
set -uo pipefail
cd "$(dirname "$0")/../.."
spool=${1:?spool binary}
py=${2:?python of the kafka-clients venv}
command -v etcd >/dev/null || tools/install-deps.sh >/dev/null || { echo "etcd is missing" >&2; exit 1; }
tmp=$(mktemp -d)
declare -A pid_of
etcd_pid=""
cleanup() {
  for pid in "${pid_of[@]}"; do kill -CONT "$pid" 2>/dev/null; kill -9 "$pid" 2>/dev/null; done
  [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null
  { wait; } 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck source=../test-etcd.sh
source tools/test-etcd.sh
start_test_etcd "$tmp" || exit 1
endpoint=$etcd_endpoint

declare -A kafka_port http_of
export CLUSTER_LAG_MS=3000
start_broker() {  # node id; the Kafka port is kept across restarts (clients bootstrap from it)
  local id=$1 listen="127.0.0.1:${kafka_port[$1]:-0}"
  : >"$tmp/broker$id.log"
  # In a subshell that waits for it, so a kill -9 is not reported as a job of this script.
  ( "$spool" broker --data-dir "$tmp/broker$id" --listen 127.0.0.1:0 --kafka-listen "$listen" --http-listen 127.0.0.1:0 \
      --node-id "$id" --etcd "$endpoint" --cluster-id cc --cluster-lease-ttl-seconds 3 --replica-lag-time-max-ms "$CLUSTER_LAG_MS" >>"$tmp/broker$id.log" 2>&1 &
    echo $! >"$tmp/broker$id.pid"
    wait ) 2>/dev/null &
  for _ in $(seq 1 50); do [ -s "$tmp/broker$id.pid" ] && break; sleep 0.02; done
  pid_of[$id]=$(cat "$tmp/broker$id.pid")
  rm -f "$tmp/broker$id.pid"
  for _ in $(seq 1 300); do grep -q "registered in cluster" "$tmp/broker$id.log" && break; sleep 0.1; done
  grep -q "registered in cluster" "$tmp/broker$id.log" || { echo "broker $id did not join:"; tail -20 "$tmp/broker$id.log"; exit 1; }
  kafka_port[$id]=$(sed -n 's/^Kafka clients: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p' "$tmp/broker$id.log" | head -1)
  http_of[$id]=$(sed -n 's/.*admin http:\/\/\([^/]*\)\/.*/\1/p' "$tmp/broker$id.log" | head -1)
}
for id in 1 2 3; do start_broker "$id"; done
export CLUSTER_BOOTSTRAP="127.0.0.1:${kafka_port[1]},127.0.0.1:${kafka_port[2]},127.0.0.1:${kafka_port[3]}"
pids_env() { echo "1=${pid_of[1]},2=${pid_of[2]},3=${pid_of[3]}"; }
echo "cluster: etcd $endpoint, Kafka $CLUSTER_BOOTSTRAP"

passed=0 failed=0
# phase NAME COMMAND...: runs it; a broker it names in $CLUSTER_VICTIM_FILE is restarted afterwards.
export CLUSTER_VICTIM_FILE="$tmp/victim"
phase() {
  local name=$1
  shift
  rm -f "$CLUSTER_VICTIM_FILE"
  if CLUSTER_PIDS=$(pids_env) CLUSTER_HTTP="1=${http_of[1]},2=${http_of[2]},3=${http_of[3]}" timeout 400 "$@" >"$tmp/out" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/    /' "$tmp/out" | tail -25
  fi
  grep -E "paused|failover|through the kill|^isr:" "$tmp/out" | sed 's/^/    /'
  local victim
  victim=$(cat "$CLUSTER_VICTIM_FILE" 2>/dev/null)
  if [ -n "$victim" ]; then
    while kill -0 "${pid_of[$victim]}" 2>/dev/null; do sleep 0.05; done
    start_broker "$victim"
  fi
}

kcat_phase() {
  local topic="failover-kcat-$RANDOM" boot=$CLUSTER_BOOTSTRAP victim leader
  "$py" - "$topic" <<'EOF' || return 1
import sys, time
from confluent_kafka.admin import AdminClient, NewTopic
import os
admin = AdminClient({"bootstrap.servers": os.environ["CLUSTER_BOOTSTRAP"]})
admin.create_topics([NewTopic(sys.argv[1], 1, 3, config={"min.insync.replicas": "2"})])[sys.argv[1]].result(30)
for _ in range(150):
    p = admin.list_topics(sys.argv[1], timeout=10).topics[sys.argv[1]].partitions.get(0)
    if p and p.leader >= 1 and len(p.isrs) == 3:
        sys.exit(0)
    time.sleep(0.2)
sys.exit("no leader with a full ISR")
EOF
  leader=$(kcat -b "$boot" -L -t "$topic" | sed -n 's/.*partition 0, leader \([0-9]\).*/\1/p' | head -1)
  [ -n "$leader" ] || { echo "no leader for $topic"; return 1; }
  # 3,000 lines at about 600/s; the leader is killed after 1 s.
  (for i in $(seq 1 3000); do echo "line-$i"; [ $((i % 100)) = 0 ] && sleep 0.15; done) \
    | kcat -b "$boot" -P -t "$topic" -p 0 -X enable.idempotence=true -X acks=all -X message.timeout.ms=90000 \
      >"$tmp/kcat-produce.out" 2>&1 &
  local producer=$!
  sleep 1
  kill -9 "${pid_of[$leader]}"
  echo "$leader" >"$CLUSTER_VICTIM_FILE"
  echo "killed $leader"
  wait "$producer" || { echo "kcat -P failed:"; tail -5 "$tmp/kcat-produce.out"; return 1; }
  # (kcat reports the lost connection to the killed leader; only failed deliveries count.)
  grep -qi "delivery failed" "$tmp/kcat-produce.out" && { echo "kcat -P lost records:"; grep -i "delivery failed" "$tmp/kcat-produce.out" | head -5; return 1; }
  kcat -b "$boot" -C -t "$topic" -o beginning -e -q >"$tmp/kcat-read.out" 2>"$tmp/kcat-read.err" || { cat "$tmp/kcat-read.err"; return 1; }
  local lines unique_lines
  lines=$(wc -l <"$tmp/kcat-read.out") unique_lines=$(sort -u "$tmp/kcat-read.out" | wc -l)
  [ "$lines" = 3000 ] && [ "$unique_lines" = 3000 ] || { echo "kcat read $lines lines ($unique_lines distinct) of 3000"; return 1; }
  echo "kcat: 3000 lines through the kill of broker $leader, each read back once"
}

phase "confluent-kafka: idempotent acks=all (RF 3, min ISR 2) through a kill -9 of the leader, every ack read back once at its offset" \
  "$py" tools/kafka-clients/cluster_failover_check.py confluent
phase "kafka-python: idempotent producer and a consumer through a kill -9 of the leader (after the first victim rejoined)" \
  "$py" tools/kafka-clients/cluster_failover_check.py kafka-python
phase "aiokafka: idempotent acks=all producer through a kill -9 of the leader, every ack read back once at its offset" \
  "$py" tools/kafka-clients/cluster_failover_check.py aiokafka
export -f kcat_phase
export tmp py
phase "kcat: 3,000 lines, idempotent acks=all, through a kill -9 of the leader; every line read back once" \
  bash -c "$(declare -p pid_of); kcat_phase"
phase "consumer group: commits survive a kill -9 of the group's coordinator (the leader of its __consumer_offsets partition); a new member resumes after them" \
  "$py" tools/kafka-clients/cluster_failover_check.py groups
phase "SIGSTOP: a follower past the lag time leaves the ISR and rejoins; both followers stopped -> NOT_ENOUGH_REPLICAS, nothing appended" \
  "$py" tools/kafka-clients/cluster_failover_check.py isr
for id in 1 2 3; do kill -0 "${pid_of[$id]}" 2>/dev/null || { echo "broker $id is not running at the end:"; tail -20 "$tmp/broker$id.log"; failed=$((failed + 1)); }; done
echo "cluster: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
