#!/usr/bin/env bash
# Side-by-side produce benchmark on 127.0.0.1: Spool, Redis Streams (pipelined XADD)
# and NATS JetStream (file storage, async publish), same record count and 100-byte
# records, one client each. Prints one table: records/s, MB/s, p99 latency, ratio to Spool.
# Installs the peers from Debian packages when missing; every server is stopped at the end.
# Usage: tools/compare-peers.sh [RECORDS]   (default 1000000; bounded by a 300 s timeout per system)
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
size=100
limit=300

need=()
for pkg in redis-server redis-tools nats-server golang-go golang-github-nats-io-go-nats-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
tools/install-deps.sh
swift build -c release --product spool >&2
swift build -c release --product spool-perf >&2
bin=$(swift build -c release --show-bin-path)

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
json_field() { python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(eval('d'+sys.argv[1]))" "$1"; }

# Spool
port=$(free_port)
"$bin/spool" broker --data-dir "$tmp/spool" --listen 127.0.0.1:"$port" --kafka-listen none --http-listen none >"$tmp/spool.log" 2>&1 &
pids+=($!)
wait_port "$port"
spool_json=$(timeout "$limit" "$bin/spool-perf" produce --broker 127.0.0.1:"$port" --topic bench --records "$records" \
  --record-size "$size" --compression lz4 --acks 1 --json 2>/dev/null | tail -1)

# Redis Streams: pipelined XADD, no persistence tuning beyond the defaults of a fresh server.
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
wait_port "$rport"
value=$(head -c "$size" < <(yes 'x' | tr -d '\n'))
redis_csv=$(timeout "$limit" redis-benchmark -h 127.0.0.1 -p "$rport" -n "$records" -c 1 -P 64 --csv XADD s '*' f "$value" | tail -1)

# NATS JetStream on file storage, loaded by a Go client built from Debian's packages.
nport=$(free_port)
nats-server -js -sd "$tmp/nats" -a 127.0.0.1 -p "$nport" >"$tmp/nats.log" 2>&1 &
pids+=($!)
wait_port "$nport"
(cd tools/peers/nats-bench && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$tmp/gocache" go build -o "$tmp/nats-bench" .)
nats_json=$(timeout "$limit" "$tmp/nats-bench" -url nats://127.0.0.1:"$nport" -n "$records" -size "$size" | tail -1)

python3 - "$records" "$size" "$spool_json" "$redis_csv" "$nats_json" <<'PY'
import csv, io, json, sys
records, size = int(sys.argv[1]), int(sys.argv[2])
spool = json.loads(sys.argv[3]); nats = json.loads(sys.argv[5])
row = next(csv.reader(io.StringIO(sys.argv[4])))
redis_rps = float(row[1]); redis_p99 = float(row[6]) if len(row) > 6 else float("nan")
rows = [
  ("Spool (lz4, acks=1)", spool["records_per_sec"], spool["mb_per_sec"], spool["latency_ms"]["p99"]),
  ("Redis Streams (XADD -P 64)", redis_rps, redis_rps * size / 1048576, redis_p99),
  ("NATS JetStream (file, async)", nats["records_per_sec"], nats["mb_per_sec"], nats["latency_ms"]["p99"]),
]
base = rows[0][1]
print(f"{records} records of {size} bytes, one client each, 127.0.0.1")
print(f"{'system':32} {'records/s':>12} {'MB/s':>8} {'p99 ms':>8} {'vs Spool':>9}")
for name, rps, mb, p99 in rows:
    print(f"{name:32} {rps:12,.0f} {mb:8.1f} {p99:8.2f} {rps / base:8.2f}x")
PY
