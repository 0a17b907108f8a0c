#!/usr/bin/env bash
# Kafka clients against a real `spool broker` (and, in cluster-check.sh, a 3-broker cluster on
# etcd): kcat (Debian, librdkafka 2.0.2), kafka-python,
# confluent-kafka (librdkafka 2.x), aiokafka, records crossing between the Kafka and the
# native protocol, and malformed requests on a raw socket. Installs what it needs (kcat via
# apt, a venv under .build/ from PyPI), starts the broker on ephemeral ports with a temporary
# data directory, runs every check with a time limit, and stops the broker on exit.
# Prints one line per check and a final "N passed, N failed"; exits non-zero on a failure.
# Usage: tools/kafka-clients/check.sh [path/to/spool]   (default .build/debug/spool)
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
spool="${1:-.build/debug/spool}"
[ -x "$spool" ] || swift build --product spool || exit 1
spool=$(cd "$(dirname "$spool")" && pwd)/$(basename "$spool")
command -v kcat >/dev/null || apt-get install -y kcat >/dev/null || { echo "kcat is missing (apt-get install -y kcat)" >&2; exit 1; }
venv=.build/kafka-clients-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import kafka, lz4, confluent_kafka, aiokafka, cramjam, snappy, zstandard' 2>/dev/null; then
  echo "setting up $venv (kafka-python, lz4, confluent-kafka, aiokafka, cramjam, python-snappy, zstandard from PyPI)" >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check \
    'kafka-python==3.0.12' lz4 crc32c 'confluent-kafka>=2.6' 'aiokafka==0.14.0' cramjam python-snappy zstandard || exit 1
fi
py="$root/$venv/bin/python"

tmp=$(mktemp -d)
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# The log cleaner looks for due cleans every 300 ms (the compaction check waits for it).
printf '%s\n' "log.cleaner.backoff.ms=300" >"$tmp/broker.properties"
"$spool" broker --config "$tmp/broker.properties" --data-dir "$tmp/data" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --default-partitions 1 >"$tmp/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 100); do
  grep -q "^spool broker .* listening on" "$tmp/broker.log" 2>/dev/null && break
  sleep 0.1
done
native_port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\),.*/\1/p' "$tmp/broker.log" | head -1)
kafka_port=$(sed -n 's/^Kafka clients: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p' "$tmp/broker.log" | head -1)
[ -n "$native_port" ] && [ -n "$kafka_port" ] || { echo "broker did not start:"; cat "$tmp/broker.log"; exit 1; }
kafka="127.0.0.1:$kafka_port"
native="--broker 127.0.0.1:$native_port"
export SPOOL_KAFKA="$kafka" kafka native tmp spool
echo "broker: native 127.0.0.1:$native_port, Kafka $kafka"

passed=0
failed=0
# run NAME SECONDS COMMAND...: one check, bounded in time, output kept for a failure.
run() {
  local name=$1 seconds=$2
  shift 2
  local command=("$@")
  if [ "$(type -t "$1")" = function ]; then
    # Shell functions run in a child bash, so that `timeout` can bound them too.
    command=(bash -c "$(declare -f "$1"); $*")
  fi
  if timeout "$seconds" "${command[@]}" >"$tmp/out" 2>&1; then
    passed=$((passed + 1))
    echo "PASS $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/    /' "$tmp/out" | tail -25
  fi
  if ! kill -0 "$broker_pid" 2>/dev/null; then
    echo "the broker died:"; tail -20 "$tmp/broker.log"; exit 1
  fi
}

# kcat: produce keyed records with headers in one codec, read them back exactly.
kcat_codec() {
  local codec=$1 topic="kc-$1-$RANDOM"
  seq 1 300 | sed 's/.*/k&:value-&/' | kcat -b "$kafka" -P -t "$topic" -z "$codec" -K: -H "h1=x" -H "codec=$codec" || return 1
  kcat -b "$kafka" -C -t "$topic" -o beginning -e -q -f '%k|%s|%h\n' >"$tmp/got" || return 1
  seq 1 300 | sed "s/.*/k&|value-&|h1=x,codec=$codec/" >"$tmp/want"
  diff "$tmp/want" "$tmp/got" || return 1
  # The batches are stored as librdkafka compressed them (it compresses only for a broker
  # that advertises the Produce versions it checks for).
  "$spool" debug dump "$tmp/data/$topic-0/00000000000000000000.log" | grep -q "codec $codec" \
    || { echo "stored batches are not $codec:"; "$spool" debug dump "$tmp/data/$topic-0/00000000000000000000.log" | head -3; return 1; }
}

# kcat: -o end sees only what arrives later; -o -N the last N records.
kcat_offsets() {
  local topic="ko-$RANDOM"
  seq 1 50 | kcat -b "$kafka" -P -t "$topic" -z lz4 || return 1
  [ "$(kcat -b "$kafka" -C -t "$topic" -o -5 -e -q | tr '\n' ' ')" = "46 47 48 49 50 " ] || { echo "-o -5 wrong"; return 1; }
  # From the end there is nothing to read until more is written.
  [ -z "$(kcat -b "$kafka" -C -t "$topic" -o end -e -q)" ] || { echo "-o end read old records"; return 1; }
  seq 101 103 | kcat -b "$kafka" -P -t "$topic" || return 1
  [ "$(kcat -b "$kafka" -C -t "$topic" -o -3 -e -q | tr '\n' ' ')" = "101 102 103 " ] || { echo "-o -3 after more writes wrong"; return 1; }
  [ "$(kcat -b "$kafka" -C -t "$topic" -o beginning -e -q | wc -l)" -eq 53 ]
}

# kcat: acks=0 (no answer expected) and acks=1, then offsets by timestamp (-Q).
kcat_acks_and_times() {
  local topic="ka-$RANDOM" before after
  before=$(( $(date +%s%3N) - 1 ))
  seq 1 500 | kcat -b "$kafka" -P -t "$topic" -X acks=0 -z gzip || return 1
  seq 501 1000 | kcat -b "$kafka" -P -t "$topic" -X acks=1 || return 1
  [ "$(kcat -b "$kafka" -C -t "$topic" -o beginning -e -q | wc -l)" -eq 1000 ] || { echo "acks=0/1 records missing"; return 1; }
  [ "$(kcat -b "$kafka" -Q -t "$topic:0:$before")" = "$topic [0] offset 0" ] || { echo "-Q before the first record"; return 1; }
  after=$(( $(date +%s%3N) + 3600000 ))
  [ "$(kcat -b "$kafka" -Q -t "$topic:0:$after")" = "$topic [0] offset -1" ] || { echo "-Q after the last record"; return 1; }
}

# kcat consumer group (-G): balanced consumer with committed offsets.
kcat_group() {
  local topic="kg-$RANDOM" group="kcat-group-$RANDOM"
  seq 1 20 | kcat -b "$kafka" -P -t "$topic" || return 1
  kcat -b "$kafka" -G "$group" -q -c 20 -X auto.offset.reset=earliest "$topic" >"$tmp/g1" || return 1
  [ "$(wc -l <"$tmp/g1")" -eq 20 ] || return 1
  seq 21 25 | kcat -b "$kafka" -P -t "$topic" || return 1
  kcat -b "$kafka" -G "$group" -q -c 5 -X auto.offset.reset=earliest "$topic" >"$tmp/g2" || return 1
  [ "$(tr '\n' ' ' <"$tmp/g2")" = "21 22 23 24 25 " ] || { echo "resumed read: $(cat "$tmp/g2")"; return 1; }
}

# librdkafka 2.0.2 reads the snappy (xerial) and zstd batches Spool's own producer writes.
kcat_reads_spool_codecs() {
  local codec topic
  for codec in snappy zstd; do
    topic="ks-$codec-$RANDOM"
    "$spool" topic create "$topic" --partitions 1 $native >/dev/null || return 1
    seq 1 3000 | sed 's/.*/{"seq":&,"codec":"'$codec'"}/' | "$spool" produce "$topic" --compression "$codec" --acks all $native || return 1
    kcat -b "$kafka" -C -t "$topic" -o beginning -e -q >"$tmp/got" || return 1
    seq 1 3000 | sed 's/.*/{"seq":&,"codec":"'$codec'"}/' | diff - "$tmp/got" >/dev/null || { echo "kcat read other records ($codec)"; return 1; }
    "$spool" debug dump "$tmp/data/$topic-0/00000000000000000000.log" | grep -q "codec $codec" || { echo "stored batches are not $codec"; return 1; }
  done
}

# SASL is not enabled: a SASL client is told so at the handshake.
sasl_refused() {
  kcat -b "$kafka" -L -m 3 -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN \
    -X sasl.username=u -X sasl.password=p >"$tmp/sasl" 2>&1
  grep -q "Unsupported SASL mechanism" "$tmp/sasl" || { cat "$tmp/sasl"; return 1; }
}

# Client quotas: `spool quota set` (AlterClientQuotas) holds one client id to 50 KB/s; kcat
# producing 1.5 MB under it is told it was throttled (throttle_time_ms, which librdkafka
# reports), while another client id is not; `spool quota list` shows the quota.
kcat_quota() {
  local topic="quota-$RANDOM" kafka_only="--kafka $kafka"
  "$spool" quota set $kafka_only --client-id throttled --producer-byte-rate 50000 || return 1
  "$spool" quota list $kafka_only | grep -q "client-id=throttled  producer_byte_rate=50000" || { echo "quota not listed"; return 1; }
  head -c 1500000 /dev/urandom | base64 -w 100 >"$tmp/quota-in"
  kcat -b "$kafka" -P -t "$topic" -z none -X client.id=fast -l "$tmp/quota-in" >"$tmp/fast" 2>&1 || return 1
  grep -qi "throttl" "$tmp/fast" && { echo "an unthrottled client id was throttled"; grep -i throttl "$tmp/fast" | head -3; return 1; }
  kcat -b "$kafka" -P -t "$topic" -z none -X client.id=throttled -l "$tmp/quota-in" >"$tmp/slow" 2>&1 || return 1
  grep -q "throttled request for" "$tmp/slow" || { echo "kcat never saw a throttle time:"; tail -5 "$tmp/slow"; return 1; }
  [ "$(kcat -b "$kafka" -C -t "$topic" -o beginning -e -q | wc -l)" -eq "$((2 * $(wc -l <"$tmp/quota-in")))" ] || { echo "records missing"; return 1; }
  "$spool" quota remove $kafka_only --client-id throttled || return 1
}

# A record crosses the protocols both ways.
cross_protocols() {
  local topic="cross-$RANDOM"
  "$spool" topic create "$topic" --partitions 1 $native >/dev/null || return 1
  printf 'from-spool-1\nfrom-spool-2\n' | "$spool" produce "$topic" --acks all $native || return 1
  [ "$(kcat -b "$kafka" -C -t "$topic" -o beginning -e -q | tr '\n' ' ')" = "from-spool-1 from-spool-2 " ] || { echo "kcat did not read spool's records"; return 1; }
  printf 'from-kcat\n' | kcat -b "$kafka" -P -t "$topic" -z gzip || return 1
  [ "$("$spool" consume "$topic" --from beginning --exit-at-end $native | tr '\n' ' ')" = "from-spool-1 from-spool-2 from-kcat " ] || { echo "spool consume did not read kcat's record"; return 1; }
}

# A compacted topic: kcat produces repeated keys and tombstones (lz4); once the cleaner ran,
# kcat reads exactly the last value of each key at its own offset (the tombstones still there),
# the cleaned batches are still lz4; after delete.retention.ms the tombstones are gone too.
# Keyless records are refused (INVALID_RECORD).
kcat_compacted() {
  local topic="kcompact-$RANDOM" round key want got
  "$spool" topic create "$topic" --partitions 1 --config cleanup.policy=compact --config segment.ms=100 \
    --config min.cleanable.dirty.ratio=0.01 --config delete.retention.ms=3000 $native >/dev/null || return 1
  : >"$tmp/all"
  for round in 1 2 3 4; do
    for key in $(seq 1 20); do echo "k$key:r$round-k$key"; done >"$tmp/in"
    [ "$round" = 4 ] && sed -i 's/^k3:.*/k3:/; s/^k7:.*/k7:/' "$tmp/in"
    kcat -b "$kafka" -P -t "$topic" -z lz4 -K: -Z <"$tmp/in" || return 1
    cat "$tmp/in" >>"$tmp/all"
    sleep 0.3 # past segment.ms: the next produce rolls a segment
  done
  # One more record closes the segment holding round 4 (the active segment is never cleaned).
  echo "zz:last" | kcat -b "$kafka" -P -t "$topic" -K: || return 1
  echo "zz:last" >>"$tmp/all"
  # The offsets each key's last record got: its line number in the produced order, minus one.
  awk -F: '{ last[$1] = (NR - 1) " " $0 } END { for (k in last) print last[k] }' "$tmp/all" | sort -n \
    | sed 's/^\([0-9]*\) \([^:]*\):$/\1 \2:NULL/; s/^\([0-9]*\) \([^:]*\):/\1 \2:/' >"$tmp/want"
  for _ in $(seq 1 50); do
    kcat -b "$kafka" -C -t "$topic" -o beginning -e -q -Z -f '%o %k:%s\n' >"$tmp/got" || return 1
    diff -q "$tmp/want" "$tmp/got" >/dev/null && break
    sleep 0.2
  done
  diff "$tmp/want" "$tmp/got" || { echo "not compacted to the last value per key"; return 1; }
  "$spool" debug dump "$tmp/data/$topic-0/00000000000000000000.log" | grep -q "codec lz4" \
    || { echo "the cleaned segment's batches are not lz4"; return 1; }
  # delete.retention.ms after that clean, the tombstones go (a purge makes a clean due).
  grep -v -e ' k3:NULL$' -e ' k7:NULL$' "$tmp/want" >"$tmp/want2"
  for _ in $(seq 1 60); do
    kcat -b "$kafka" -C -t "$topic" -o beginning -e -q -Z -f '%o %k:%s\n' >"$tmp/got" || return 1
    diff -q "$tmp/want2" "$tmp/got" >/dev/null && break
    sleep 0.2
  done
  diff "$tmp/want2" "$tmp/got" || { echo "tombstones not removed after delete.retention.ms"; return 1; }
  # A record without a key is refused.
  echo "no-key" | kcat -b "$kafka" -P -t "$topic" >"$tmp/nokey" 2>&1
  grep -q "Broker failed to validate record" "$tmp/nokey" || { echo "keyless record not refused:"; cat "$tmp/nokey"; return 1; }
}

cd tools/kafka-clients
run "kcat produce/consume, codec none, keys and headers" 60 kcat_codec none
run "kcat produce/consume, codec gzip, keys and headers" 60 kcat_codec gzip
run "kcat produce/consume, codec snappy, keys and headers" 60 kcat_codec snappy
run "kcat produce/consume, codec lz4, keys and headers" 60 kcat_codec lz4
run "kcat produce/consume, codec zstd, keys and headers" 60 kcat_codec zstd
run "kcat -o -N and -o end" 60 kcat_offsets
run "kcat acks=0 and acks=1, offsets by timestamp (-Q)" 60 kcat_acks_and_times
run "kcat balanced consumer group resumes from its commits" 120 kcat_group
run "kcat reads what spool produce --compression snappy|zstd wrote" 60 kcat_reads_spool_codecs
run "SASL handshake answered: not enabled" 30 sasl_refused
run "kcat compacted topic: last value per key after the cleaner, tombstones gone after delete.retention.ms" 90 kcat_compacted
run "a record crosses protocols: spool produce -> kcat, kcat -> spool consume" 60 cross_protocols
run "client quota: kcat over its produce byte rate is throttled, another client id is not" 90 kcat_quota
run "kafka-python: idempotent producer, 2-member group, leave, commit and resume" 240 "$py" kafka_python_check.py
run "confluent-kafka: AdminClient, idempotent acks=all producer, group consumer" 180 "$py" confluent_check.py
run "admin: DescribeLogDirs and DescribeProducers (kafka-python)" 120 "$py" describe_check.py
run "offsets and admin: ListOffsets by time and -3 (confluent-kafka, kafka-python)" 120 "$py" offsets_check.py
run "aiokafka: producer and group consumer" 120 "$py" aiokafka_check.py
run "codecs: confluent-kafka, kafka-python and spool produce with gzip/snappy/lz4/zstd, stored as asked, read back" 240 "$py" codecs_check.py
run "one group, both protocols: kafka-python and spool consume split partitions, take over" 180 "$py" mixed_group_check.py
run "malformed requests: errors or closes, broker stays up" 180 "$py" malformed_check.py
run "security: SSL, SASL PLAIN/SCRAM-SHA-256/512, SASL_SSL, mTLS, refusals (security-check.sh)" 600 "$root/tools/kafka-clients/security-check.sh" "$spool" "$py"
run "cluster: confluent-kafka, kafka-python and kcat through kill -9 of partition leaders (3 brokers, etcd; cluster-check.sh)" 600 "$root/tools/kafka-clients/cluster-check.sh" "$spool" "$py"
run "cluster partitions: a leader cut off in network namespaces is fenced and truncated on return; etcd quorum loss changes no leader (partition-check.sh)" 420 "$root/tools/kafka-clients/partition-check.sh" "$spool" "$py"
run "transactions: confluent-kafka and kafka-python commit/abort, read_committed, LSO, zombie fenced" 240 "$py" transactions_check.py
run "exactly-once consume-transform-produce across a kill -9 of the broker (confluent-kafka)" 240 "$py" transactions_crash_check.py

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
