#!/usr/bin/env bash
# Metrics overhead benchmark (not a test): two release brokers side by side, one with the
# admin listener (Prometheus metrics collected), one with --http-listen none (no-op
# metrics); spool-perf produce takes turns on them (order alternating per round), and
# the broker's CPU time per run is read from /proc/PID/stat. Prints each run, then the
# ratios of median throughput and of broker CPU-seconds per million records.
# Usage: tools/bench-metrics.sh [ROUNDS] [RECORDS]   (default 6 rounds of 3,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-6}"
records="${2:-3000000}"
tools/install-deps.sh
swift build -c release --product spool >&2
swift build -c release --product spool-perf >&2
bin=$(swift build -c release --show-bin-path)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ticks=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
declare -A pid port
for which in on off; do
  port[$which]=$(free_port)
  http=127.0.0.1:0; [ "$which" = off ] && http=none
  "$bin/spool" broker --data-dir "$tmp/$which" --listen 127.0.0.1:"${port[$which]}" --kafka-listen none --http-listen "$http" >"$tmp/$which.log" 2>&1 &
  pid[$which]=$!; pids+=($!)
  wait_port "${port[$which]}"
  "$bin/spool" topic create m --partitions 1 --broker 127.0.0.1:"${port[$which]}" >/dev/null
done
cpu() { awk -v t="$ticks" '{printf "%.3f", ($14+$15)/t}' /proc/"$1"/stat; }
for round in $(seq 1 "$rounds"); do
  order="on off"; [ $((round % 2)) -eq 0 ] && order="off on"
  for which in $order; do
    c0=$(cpu "${pid[$which]}")
    rate=$(timeout 300 "$bin/spool-perf" produce --broker 127.0.0.1:"${port[$which]}" --topic m --records "$records" \
      --record-size 100 --compression lz4 --acks 1 2>/dev/null | grep -o '[0-9.]* records/sec' | head -1 | cut -d' ' -f1)
    c1=$(cpu "${pid[$which]}")
    echo "$which $rate $(echo "$c1 - $c0" | bc -l)" | tee -a "$tmp/results"
  done
done
python3 - "$tmp/results" "$records" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
n = int(sys.argv[2]) / 1e6
rate = {w: statistics.median(float(r[1]) for r in runs if r[0] == w) for w in ("on", "off")}
cpu = {w: sum(float(r[2]) for r in runs if r[0] == w) / sum(1 for r in runs if r[0] == w) / n for w in ("on", "off")}
print(f"median records/s: metrics on {rate['on']:,.0f}, off {rate['off']:,.0f} (on/off {rate['on'] / rate['off']:.3f})")
print(f"broker CPU-s per million records: on {cpu['on']:.4f}, off {cpu['off']:.4f} (on/off {cpu['on'] / cpu['off']:.3f})")
PY
