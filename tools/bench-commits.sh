#!/usr/bin/env bash
# Synchronous-commit benchmark (a benchmark, not a test): one consumer reads a record and
# commits it synchronously before taking the next, for a bounded count. kafka-python
# (consumer.commit() per record, Kafka listener), the same commits from Python written by
# hand on a raw socket (the floor without kafka-python's client machinery) and Spool's own
# consumer (commit(record) per record, native listener) run one after the other against the
# same broker process and the same topic, each in its own group. Besides each client's commits/s and commit()
# time, it reads the broker's /metrics around each run and prints the broker's share of a
# commit (request read → answer written, mean) and the offsets log's fsync rounds per
# commit and their mean duration.
# Both policies run in one go, each on its own broker: offsets.flush.ms=0 (fsync before
# each answer, the behaviour before the policy) and the default 1000 (answered once written).
# Usage: tools/bench-commits.sh [COMMITS] [ROUNDS]   (default 20000 commits, 1 round; each
#        client run bounded by 120 s)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
commits="${1:-20000}"
rounds="${2:-1}"
limit=120
# SPOOL_BIN_DIR: use the spool and spool-perf already built there (no build).
if [ -n "${SPOOL_BIN_DIR:-}" ]; then
  bin=$SPOOL_BIN_DIR
else
  swift build -c release --product spool >&2
  swift build -c release --product spool-perf >&2
  bin=$(swift build -c release --show-bin-path)
fi
# The Kafka clients' venv, made as tools/kafka-clients/check.sh makes it.
venv=.build/kafka-clients-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import kafka, lz4, confluent_kafka, aiokafka, cramjam' 2>/dev/null; then
  echo "setting up $venv (kafka-python, lz4, confluent-kafka, aiokafka, cramjam from PyPI)" >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check \
    'kafka-python==3.0.12' lz4 crc32c 'confluent-kafka>=2.6' 'aiokafka==0.14.0' cramjam
fi
py="$root/$venv/bin/python"

tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "${KEEP_LOGS:-}" ] && cp "$tmp"/broker-*.log "$KEEP_LOGS"/ 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

results="$tmp/results.jsonl"
metrics() { curl -sf "http://127.0.0.1:$hport/metrics" >"$1"; }
# run NAME COMMAND...: one client run between two scrapes of /metrics.
run() {
  local name=$1; shift
  metrics "$tmp/before"
  if timeout "$limit" "$@" >"$tmp/out" 2>"$tmp/err"; then
    metrics "$tmp/after"
    python3 - "$name" "$tmp/before" "$tmp/after" "$(tail -1 "$tmp/out")" "$flush" >>"$results" <<'PY'
import json, re, sys
name, before, after, line, flush = sys.argv[1:6]
def read(path):
    values = {}
    for l in open(path):
        m = re.match(r'^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+|NaN)$', l.strip())
        if m: values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return values
b, a = read(before), read(after)
def delta(key): return a.get(key, 0.0) - b.get(key, 0.0)
out = json.loads(line)
out["run"] = name
out["offsets_flush_ms"] = int(flush)
for api, listener in (("offsetCommit", "kafka"), ("commitOffsets", "native")):
    key = f'spool_request_duration_seconds_%s{{listener="{listener}",api="{api}"}}'
    n = delta(key % "count")
    if n > 0:
        out["broker_us_mean"] = round(delta(key % "sum") / n * 1e6, 1)
rounds = delta("spool_offsets_fsync_duration_seconds_count")
out["fsync_rounds_per_commit"] = round(rounds / max(1, out["commits"]), 4)
out["fsync_us_mean"] = round(delta("spool_offsets_fsync_duration_seconds_sum") / rounds * 1e6, 1) if rounds else 0.0
print(json.dumps(out))
PY
  else
    echo "$name failed:" >&2; tail -n 5 "$tmp/out" "$tmp/err" >&2
  fi
}

# Each policy gets its own broker: offsets.flush.ms=0 (fsync before each answer: the
# behaviour before this policy existed) and the default (answered once written).
for flush in 0 1000; do
  port=$(free_port); kport=$(free_port); hport=$(free_port)
  rm -rf "$tmp/data"
  "$bin/spool" broker --data-dir "$tmp/data" --listen 127.0.0.1:"$port" --kafka-listen 127.0.0.1:"$kport" \
    --http-listen 127.0.0.1:"$hport" --offsets-flush-ms "$flush" >"$tmp/broker-$flush.log" 2>&1 &
  pid=$!
  wait_port "$port"; wait_port "$kport"; wait_port "$hport"
  "$bin/spool" topic create commits --partitions 1 --broker 127.0.0.1:"$port" >/dev/null
  # Enough records for every run to commit COMMITS (+1 warm-up) of its own.
  seq 1 $((commits + 100)) | "$bin/spool" produce commits --acks all --broker 127.0.0.1:"$port"
  export SPOOL_KAFKA="127.0.0.1:$kport"
  for r in $(seq 1 "$rounds"); do
    run "kafka-python commit() per record (Kafka listener)" \
      "$py" tools/kafka-clients/commit_bench.py commits "kp-$r" "$commits" "$limit"
    run "python raw socket, OffsetCommit v2 (Kafka listener)" \
      "$py" tools/kafka-clients/raw_commit_bench.py commits "raw-$r" "$commits"
    run "spool commit(record) per record (native listener)" \
      "$bin/spool-perf" commits --broker 127.0.0.1:"$port" --topic commits --group "native-$r" --records "$commits" --timeout "$limit"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
uptime >&2
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'run':50} {'flush.ms':>8} {'commits/s':>10} {'commit() µs':>12} {'p99 µs':>8} {'broker µs':>10} {'fsyncs/commit':>14} {'fsync µs':>9}")
for r in rows:
    print(f"{r['run']:50} {r['offsets_flush_ms']:8} {r['commits_per_sec']:10,.0f} {r['commit_us_mean']:12.1f} {r['commit_us_p99']:8.0f} "
          f"{r.get('broker_us_mean', float('nan')):10.1f} {r['fsync_rounds_per_commit']:14.4f} {r['fsync_us_mean']:9.1f}")
def rate(client, flush):
    xs = [r["commits_per_sec"] for r in rows if r["client"] == client and r["offsets_flush_ms"] == flush]
    return sum(xs) / len(xs) if xs else None
for client in ("kafka-python", "python-raw-socket", "spool"):
    before, after = rate(client, 0), rate(client, 1000)
    if before and after:
        print(f"{client}: {after:,.0f} commits/s answered once written vs {before:,.0f}/s fsync per commit: {after / before:.1f}x")
kp, native = rate("kafka-python", 1000), rate("spool", 1000)
if kp and native:
    print(f"kafka-python / spool (default policy): {kp / native:.2f}")
for r in rows: print(json.dumps(r))
PY
