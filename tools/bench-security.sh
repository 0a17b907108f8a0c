#!/usr/bin/env bash
# Security benchmark (a benchmark, not a test): the same broker process serves Kafka clients
# on a PLAINTEXT, an SSL and a SASL_SSL (SCRAM-SHA-512) listener; librdkafka's own load tool
# (rdkafka_performance) produces and consumes the same records (100 bytes, lz4, acks=1) on
# each, one run at a time, and the broker's CPU-seconds per million records come from
# /proc/PID/stat around each run. Then SCRAM authentications per second: a client on a raw
# socket doing SaslHandshake + the two SCRAM-SHA-256 / -512 round trips (4,096 iterations;
# the client's salted password computed once, so the figure is the broker's cost).
# Usage: tools/bench-security.sh [RECORDS] [AUTHS]   (default 2000000 and 2000; each run bounded by 300 s)
#   SPOOL_BIN_DIR  release binaries to use (default: builds .build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-2000000}"
auths="${2:-2000}"
size=100
limit=300
tools/install-deps.sh >/dev/null
# shellcheck source=bench-lib.sh
source tools/bench-lib.sh
bench_release spool
rdperf=$(tools/peers/build-rdkafka-perf.sh)
tools/gen-certs.sh "$tmp/certs" >/dev/null
echo "bench-secret" | "$bin/spool" user create bench --data-dir "$tmp/data" --password-stdin >/dev/null
broker_cpu() { bench_cpu "$pid"; }

"$bin/spool" broker --data-dir "$tmp/data" --listen 127.0.0.1:0 --http-listen none --default-partitions 1 \
  --kafka-listen PLAINTEXT://127.0.0.1:0 --kafka-listen SSL://127.0.0.1:0 --kafka-listen SASL_SSL://127.0.0.1:0 \
  --kafka-ssl-certificate "$tmp/certs/broker.pem" --kafka-ssl-key "$tmp/certs/broker.key" >"$tmp/broker.log" 2>&1 &
pid=$!
BENCH_PIDS+=("$pid")
for _ in $(seq 1 300); do grep -q "^spool broker .* listening on" "$tmp/broker.log" && break; sleep 0.1; done
port_of() { sed -n "s/^Kafka clients $1: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p" "$tmp/broker.log" | head -1; }
plain=127.0.0.1:$(sed -n "s/^Kafka clients: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p" "$tmp/broker.log" | head -1) ssl=127.0.0.1:$(port_of SSL) sasl=127.0.0.1:$(port_of SASL_SSL)
echo "broker: PLAINTEXT $plain, SSL $ssl, SASL_SSL $sasl" >&2
tls=(-X security.protocol=ssl -X ssl.ca.location="$tmp/certs/ca.pem")
scram=(-X security.protocol=sasl_ssl -X ssl.ca.location="$tmp/certs/ca.pem" -X sasl.mechanisms=SCRAM-SHA-512
       -X sasl.username=bench -X sasl.password=bench-secret)

pargs=(-p 0 -s "$size" -c "$records" -z lz4 -a 1 -X linger.ms=5 -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000)
cargs=(-p 0 -o beginning -c "$records" -X fetch.max.bytes=52428800)
run "produce PLAINTEXT" "$records" "$rdperf" -P -t plain -b "$plain" "${pargs[@]}"
run "produce SSL" "$records" "$rdperf" -P -t ssl -b "$ssl" "${pargs[@]}" "${tls[@]}"
run "produce SASL_SSL SCRAM-SHA-512" "$records" "$rdperf" -P -t sasl -b "$sasl" "${pargs[@]}" "${scram[@]}"
run "consume PLAINTEXT (sendfile)" "$records" "$rdperf" -C -t plain -b "$plain" "${cargs[@]}"
run "consume SSL (copied through TLS)" "$records" "$rdperf" -C -t ssl -b "$ssl" "${cargs[@]}" "${tls[@]}"
run "consume SASL_SSL SCRAM-SHA-512" "$records" "$rdperf" -C -t sasl -b "$sasl" "${cargs[@]}" "${scram[@]}"

python3 - "$results" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
base = {}
print(f"{'run':36} {'records/s':>12} {'vs plaintext':>13} {'broker CPU s / M records':>26}")
for name, n, wall, cpu in rows:
    n, wall, cpu = int(n), float(wall), float(cpu)
    kind = name.split()[0]
    rate = n / wall
    base.setdefault(kind, rate)
    print(f"{name:36} {rate:12,.0f} {rate / base[kind]:12.2f}x {cpu / (n / 1e6):26.3f}")
print("records/s: wall time of the whole client process (TLS and SASL handshakes included)")
PY

# SCRAM authentications per second on the SASL_SSL listener (TLS handshake per connection
# included) and, for the SASL exchange alone, on a SASL_PLAINTEXT listener of a second broker.
kill "$pid"; wait "$pid" 2>/dev/null || true
"$bin/spool" broker --data-dir "$tmp/data" --listen 127.0.0.1:0 --http-listen none \
  --kafka-listen SASL_PLAINTEXT://127.0.0.1:0 >"$tmp/broker2.log" 2>&1 &
pid=$!
BENCH_PIDS+=("$pid")
for _ in $(seq 1 300); do grep -q "^spool broker .* listening on" "$tmp/broker2.log" && break; sleep 0.1; done
saslport=$(sed -n "s/^Kafka clients SASL_PLAINTEXT: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p" "$tmp/broker2.log" | head -1)
for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
  c0=$(broker_cpu)
  python3 tools/kafka-clients/scram_bench.py "127.0.0.1:$saslport" bench bench-secret "$mechanism" "$auths"
  c1=$(broker_cpu)
  echo "  broker CPU: $(echo "($c1 - $c0) * 1000 / $auths" | bc -l | cut -c1-6) ms per authentication"
done
