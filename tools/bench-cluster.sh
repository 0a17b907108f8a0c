#!/usr/bin/env bash
# Cluster benchmark (a benchmark, not a test): one etcd and three release `spool broker --etcd`
# processes on 127.0.0.1, and librdkafka's own load tool (rdkafka_performance) producing the
# same records (100 bytes, lz4) to a topic of 3 partitions with replication factor 1 and
# acks=1, then to one with replication factor 3, min.insync.replicas=2 and acks=all, in the
# same run, alternating ROUNDS times; then spool-perf (Spool's own client, routed to each
# partition's leader) the same way, with its p99 latency. Reports records/s (wall time of the client process),
# the client's latency line, and the three brokers' CPU-seconds per million records (from
# /proc/PID/stat around each run), with RF 3 acks=all as a ratio of RF 1 acks=1.
# Usage: tools/bench-cluster.sh [RECORDS] [ROUNDS]   (default 2000000 and 2; each run bounded by 300 s)
#   SPOOL_BIN_DIR  release binaries to use (default: builds .build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-2000000}"
rounds="${2:-2}"
limit=300
tools/install-deps.sh >/dev/null
# shellcheck source=bench-lib.sh
source tools/bench-lib.sh
bench_release spool spool-perf
rdperf=$(tools/peers/build-rdkafka-perf.sh)
client=$(free_port) peer=$(free_port)
etcd --name m0 --data-dir "$tmp/etcd" --listen-client-urls "http://127.0.0.1:$client" \
  --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "m0=http://127.0.0.1:$peer" >"$tmp/etcd.log" 2>&1 &
BENCH_PIDS+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$client/health" 2>/dev/null | grep -q true && break; sleep 0.1; done
boot="" pids=()  # the brokers
for id in 1 2 3; do
  "$bin/spool" broker --data-dir "$tmp/b$id" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --http-listen none \
    --node-id "$id" --etcd "http://127.0.0.1:$client" --cluster-id bench >"$tmp/b$id.log" 2>&1 &
  pids+=($!)
  BENCH_PIDS+=($!)
done
for id in 1 2 3; do
  for _ in $(seq 1 300); do grep -q "registered in cluster" "$tmp/b$id.log" && break; sleep 0.1; done
  port=$(sed -n 's/^Kafka clients: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p' "$tmp/b$id.log" | head -1)
  boot+="${boot:+,}127.0.0.1:$port"
done
echo "cluster: $boot" >&2
native=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\),.*/\1/p' "$tmp/b1.log" | head -1)
"$bin/spool" topic create rf1 --partitions 3 --replication-factor 1 --broker "127.0.0.1:$native" >/dev/null
"$bin/spool" topic create rf3 --partitions 3 --replication-factor 3 --config min.insync.replicas=2 --broker "127.0.0.1:$native" >/dev/null
sleep 2  # every replica hosts its partitions and the followers start fetching

cluster_cpu() { bench_cpu "${pids[@]}"; }
results="$tmp/results.tsv"
run() {  # NAME TOPIC ACKS
  local c0 t0 c1 t1
  c0=$(cluster_cpu); t0=$(now)
  timeout "$limit" "$rdperf" -P -t "$2" -b "$boot" -s 100 -c "$records" -z lz4 -a "$3" -l -X linger.ms=5 \
    -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000 >"$tmp/run.out" 2>&1 \
    || echo "$1: rdkafka_performance exited $? ($(grep -c 'produce failures' "$tmp/run.out") summary lines; see the failed count below)" >&2
  t1=$(now); c1=$(cluster_cpu)
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$records" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$c1 - $c0" | bc -l)" \
    "$(grep -E 'latency|msgs/s' "$tmp/run.out" | tail -1 | tr '\t' ' ')" >>"$results"
}
perf_run() {  # NAME TOPIC ACKS: spool-perf through the native listener (its client routes to each leader)
  local c0 t0 c1 t1
  c0=$(cluster_cpu); t0=$(now)
  timeout "$limit" "$bin/spool-perf" produce --broker "127.0.0.1:$native" --topic "$2" --records "$records" --record-size 100 \
    --compression lz4 --acks "$3" --json >"$tmp/perf.out" 2>"$tmp/perf.err" || echo "$1: spool-perf exited $?: $(tail -2 "$tmp/perf.err")" >&2
  t1=$(now); c1=$(cluster_cpu)
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$records" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$c1 - $c0" | bc -l)" \
    "$(tail -1 "$tmp/perf.out")" >>"$results"
}
for round in $(seq 1 "$rounds"); do
  run "RF 1, acks=1" rf1 1
  run "RF 3, min ISR 2, acks=all" rf3 -1
  perf_run "spool-perf RF 1, acks=1" rf1 1
  perf_run "spool-perf RF 3, acks=all" rf3 all
done
python3 - "$results" <<'PY'
import json, sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by = {}
for name, n, wall, cpu, line in rows:
    by.setdefault(name, []).append((int(n) / float(wall), float(cpu) / (int(n) / 1e6), line))
print(f"{'run':28} {'records/s (median)':>19} {'cluster CPU s / M records':>26}")
base = {}
for name, values in by.items():
    rate = statistics.median(v[0] for v in values)
    cpu = statistics.median(v[1] for v in values)
    tool = "spool-perf" if name.startswith("spool-perf") else "rdkafka_performance"
    base.setdefault(tool, rate)
    print(f"{name:28} {rate:19,.0f} {cpu:26.3f}   ({rate / base[tool]:.2f}x of RF 1, same tool)")
    if tool == "spool-perf":
        p99 = [json.loads(v[2])["latency_ms"]["p99"] for v in values if v[2].startswith("{")]
        if p99:
            print(f"    spool-perf p99 latency: {min(p99):.2f}-{max(p99):.2f} ms over {len(p99)} runs")
    else:
        print(f"    rdkafka_performance: {values[-1][2]}")
PY
