#!/usr/bin/env bash
# Replication over TLS and SASL against plaintext (a benchmark, not a test): one etcd and three
# release `spool broker --etcd` processes on 127.0.0.1, started afresh for each run, whose
# followers fetch from leaders over PLAINTEXT, then over SASL_SSL (SCRAM-SHA-512, certificates
# from tools/gen-certs.sh), alternating ROUNDS times. Each run: spool-perf produces RECORDS
# records (100 bytes, lz4) to a topic of 3 partitions, replication factor 3,
# min.insync.replicas=2, acks=all, through the brokers' plaintext listeners (the clients'
# side is the same in both), so only the replication path differs. Reports records/s (the
# client's wall time), its p99 latency, and the three brokers' CPU-seconds per million records,
# SASL_SSL as a ratio of PLAINTEXT.
# Usage: tools/bench-inter-broker.sh [RECORDS] [ROUNDS]   (default 1000000 and 2; each run bounded by 300 s)
#   SPOOL_BIN_DIR  release binaries to use (default: builds .build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
rounds="${2:-2}"
limit=300
tools/install-deps.sh >/dev/null
# shellcheck source=bench-lib.sh
source tools/bench-lib.sh
bench_release spool spool-perf
tools/gen-certs.sh "$tmp/certs" >/dev/null
printf 'bench-broker-pw\n' >"$tmp/broker.password"
# shellcheck source=test-etcd.sh
source tools/test-etcd.sh

cluster_run() {  # MODE (PLAINTEXT or SASL_SSL) ROUND
  local mode=$1 dir="$tmp/$1-$2" id port native c0 t0 c1 t1 pids=() security=()
  mkdir -p "$dir"
  start_test_etcd "$dir" || exit 1
  BENCH_PIDS+=("$etcd_pid")
  local cluster="bench-$mode-$2"
  if [ "$mode" = SASL_SSL ]; then
    "$bin/spool" user create broker --etcd "$etcd_endpoint" --cluster-id "$cluster" --password-stdin <"$tmp/broker.password" >/dev/null
    security=(--kafka-listen "SASL_SSL://127.0.0.1:0" --kafka-ssl-certificate "$tmp/certs/broker.pem" --kafka-ssl-key "$tmp/certs/broker.key"
              --kafka-ssl-client-ca "$tmp/certs/ca.pem" --inter-broker-security-protocol SASL_SSL
              --inter-broker-sasl-user broker --inter-broker-password-file "$tmp/broker.password")
  fi
  for id in 1 2 3; do
    "$bin/spool" broker --data-dir "$dir/b$id" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 "${security[@]}" --http-listen none \
      --node-id "$id" --etcd "$etcd_endpoint" --cluster-id "$cluster" >"$dir/b$id.log" 2>&1 &
    pids+=($!)
    BENCH_PIDS+=($!)
  done
  for id in 1 2 3; do
    for _ in $(seq 1 300); do grep -q "registered in cluster" "$dir/b$id.log" && break; sleep 0.1; done
    grep -q "registered in cluster" "$dir/b$id.log" || { echo "broker $id ($mode) did not join:" >&2; tail -5 "$dir/b$id.log" >&2; exit 1; }
  done
  native=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\),.*/\1/p' "$dir/b1.log" | head -1)
  "$bin/spool" topic create rf3 --partitions 3 --replication-factor 3 --config min.insync.replicas=2 --broker "127.0.0.1:$native" >/dev/null
  sleep 2  # every replica hosts its partitions and the followers start fetching
  c0=$(bench_cpu "${pids[@]}"); t0=$(now)
  timeout "$limit" "$bin/spool-perf" produce --broker "127.0.0.1:$native" --topic rf3 --records "$records" --record-size 100 \
    --compression lz4 --acks all --json >"$dir/perf.out" 2>"$dir/perf.err" || echo "$mode: spool-perf exited $?: $(tail -2 "$dir/perf.err")" >&2
  t1=$(now); c1=$(bench_cpu "${pids[@]}")
  if grep -q "fetch from broker" "$dir"/b*.log; then
    echo "$mode: a follower was refused:" >&2
    grep -h "fetch from broker" "$dir"/b*.log | head -3 >&2
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "$records" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$c1 - $c0" | bc -l)" "$(tail -1 "$dir/perf.out")" >>"$results"
  for p in "${pids[@]}" "$etcd_pid"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}" "$etcd_pid"; do wait "$p" 2>/dev/null || true; done
}
for round in $(seq 1 "$rounds"); do
  cluster_run PLAINTEXT "$round"
  cluster_run SASL_SSL "$round"
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by = {}
for mode, n, wall, cpu, line in rows:
    p99 = json.loads(line)["latency_ms"]["p99"] if line.startswith("{") else float("nan")
    by.setdefault(mode, []).append((int(n) / float(wall), float(cpu) / (int(n) / 1e6), p99))
print(f"{'replication between brokers':30} {'records/s (median)':>19} {'p99 ms (median)':>16} {'cluster CPU s / M records':>26}")
base = None
for mode in ("PLAINTEXT", "SASL_SSL"):
    values = by.get(mode, [])
    if not values:
        continue
    rate = statistics.median(v[0] for v in values)
    cpu = statistics.median(v[1] for v in values)
    p99 = statistics.median(v[2] for v in values)
    base = base or (rate, cpu)
    print(f"{mode + ', RF 3, acks=all':30} {rate:19,.0f} {p99:16.1f} {cpu:26.3f}   ({rate / base[0]:.2f}x the records/s, {cpu / base[1]:.2f}x the CPU of PLAINTEXT)")
PY
