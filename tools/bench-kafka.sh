#!/usr/bin/env bash
# Kafka-listener benchmark (a benchmark, not a test): unchanged librdkafka clients against
# Spool's Kafka listener, beside Spool's own client on the native listener, same broker
# process, same records (100 bytes, lz4, acks=1), one client at a time on 127.0.0.1.
# For each run it reports the client's records/s and the broker's CPU-seconds per million
# records (from /proc/PID/stat), so a client-bound run shows as a broker with CPU to spare.
# Usage: tools/bench-kafka.sh [RECORDS]   (default 5000000; each run bounded by 300 s)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-5000000}"
size=100
limit=300
tools/install-deps.sh
dpkg -s kcat >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
# shellcheck source=bench-lib.sh
source tools/bench-lib.sh
bench_release spool spool-perf
rdperf=$(tools/peers/build-rdkafka-perf.sh)
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
broker_cpu() { bench_cpu "$pid"; }

port=$(free_port); kport=$(free_port)
"$bin/spool" broker --data-dir "$tmp/data" --listen 127.0.0.1:"$port" --kafka-listen 127.0.0.1:"$kport" \
  --http-listen 127.0.0.1:0 >"$tmp/broker.log" 2>&1 &
pid=$!
BENCH_PIDS+=("$pid")
wait_port "$port"; wait_port "$kport"
for t in native kafka kcat; do
  "$bin/spool" topic create "$t" --partitions 1 --config compression.type=producer --broker 127.0.0.1:"$port" >/dev/null
done


run "native produce (spool-perf)" "$records" "$bin/spool-perf" produce --broker 127.0.0.1:"$port" --topic native \
  --records "$records" --record-size "$size" --compression lz4 --acks 1
run "native consume (spool-perf)" "$records" "$bin/spool-perf" consume --broker 127.0.0.1:"$port" --topic native \
  --records "$records"
run "kafka produce (rdkafka_performance)" "$records" "$rdperf" -P -t kafka -p 0 -b 127.0.0.1:"$kport" -s "$size" \
  -c "$records" -z lz4 -a 1 -X linger.ms=5 -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000
run "kafka consume (rdkafka_performance)" "$records" "$rdperf" -C -t kafka -p 0 -b 127.0.0.1:"$kport" -o beginning \
  -c "$records" -X fetch.max.bytes=52428800
python3 -c "
import sys
for i in range(int(sys.argv[1])): print('{\"id\":%09d,\"user\":\"u%05d\",\"event\":\"click\",\"page\":\"/p/%04d\",\"ms\":%06d}' % (i, i % 99991, i % 9973, i % 999983))
" "$records" >"$tmp/records.txt"
run "kafka produce (kcat -P -l)" "$records" kcat -P -b 127.0.0.1:"$kport" -t kcat -p 0 -z lz4 -X linger.ms=5 \
  -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000 -l "$tmp/records.txt"
run "kafka consume (kcat -C -e)" "$records" kcat -C -b 127.0.0.1:"$kport" -t kcat -p 0 -o beginning -e -q \
  -X fetch.max.bytes=52428800 -f ''

# The clients' own summaries (rates over their own timing, without process start-up).
for f in "$tmp"/*.out "$tmp"/*.err; do
  line=$(grep -hE "msgs/s|records/sec|records/s" "$f" 2>/dev/null | tail -1 || true)
  [ -n "$line" ] && echo "$(basename "$f"): $line"
done
python3 - "$results" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("records/s below: wall time of the whole client process (start-up and metadata included)")
print(f"{'run':40} {'records/s':>12} {'broker CPU s / M records':>26} {'broker CPU share':>17}")
for name, n, wall, cpu in rows:
    n, wall, cpu = int(n), float(wall), float(cpu)
    print(f"{name:40} {n / wall:12,.0f} {cpu / (n / 1e6):26.3f} {cpu / wall:16.0%}")
PY
