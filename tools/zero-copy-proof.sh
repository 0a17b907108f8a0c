#!/usr/bin/env bash
# Zero-copy proof: runs a broker under strace, produces and fetches records, and
# shows that the fetched batch bytes leave the broker through sendfile(2).
# Fails unless the bytes sent with sendfile cover every byte of the stored log, for the
# native protocol (spool consume) and for the Kafka protocol (kcat, librdkafka) alike.
# Usage: tools/zero-copy-proof.sh [path/to/spool]   (default .build/debug/spool)
set -euo pipefail
cd "$(dirname "$0")/.."
spool="${1:-.build/debug/spool}"
[ -x "$spool" ] || swift build --product spool
command -v strace >/dev/null || { echo "strace is missing (apt-get install -y strace)" >&2; exit 1; }
tmp=$(mktemp -d)
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then
    kill $(pgrep -P "$broker_pid") "$broker_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

strace -f -qq -e trace=sendfile -o "$tmp/trace" "$spool" broker --data-dir "$tmp/data" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 >"$tmp/broker.log" 2>&1 &
broker_pid=$!
# Up to 60 s: under strace a debug broker on a loaded machine starts slowly.
for _ in $(seq 1 600); do
  grep -q "^spool broker .* listening on" "$tmp/broker.log" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\),.*/\1/p' "$tmp/broker.log" | head -1)
[ -n "$port" ] || { echo "broker did not start:"; cat "$tmp/broker.log"; exit 1; }
b="--broker 127.0.0.1:$port"

"$spool" topic create zc --partitions 2 $b >/dev/null
seq 1 20000 | sed 's/^/{"event":"click","n":/; s/$/,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}/' \
  | "$spool" produce zc --compression lz4 --acks all $b
got=$("$spool" consume zc --from beginning --exit-at-end $b | wc -l)
[ "$got" -eq 20000 ] || { echo "consumed $got records, expected 20000"; exit 1; }

stored=$(cat "$tmp"/data/zc-*/*.log | wc -c)
sendfile_bytes() { grep -o 'sendfile(.*) = [0-9]*' "$tmp/trace" | sed 's/.* = //' | awk '{s += $1} END {print s + 0}'; }
native_sent=$(sendfile_bytes)

# The same records read by kcat (librdkafka) through the Kafka listener.
kafka_port=$(sed -n 's/^Kafka clients: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p' "$tmp/broker.log" | head -1)
if command -v kcat >/dev/null && [ -n "$kafka_port" ]; then
  got=$(kcat -b "127.0.0.1:$kafka_port" -C -t zc -o beginning -e -q | wc -l)
  [ "$got" -eq 20000 ] || { echo "kcat consumed $got records, expected 20000"; exit 1; }
  kafka_sent=$(( $(sendfile_bytes) - native_sent ))
  echo "zero-copy (Kafka protocol): kcat's fetches moved $kafka_sent bytes with sendfile; the log holds $stored bytes; 20000 records read back"
  if [ "$kafka_sent" -lt "$stored" ]; then
    echo "zero-copy proof FAILED: batches fetched by kcat did not go out through sendfile" >&2
    exit 1
  fi
else
  echo "zero-copy proof FAILED: kcat is missing (apt-get install -y kcat) or the Kafka listener did not start" >&2
  exit 1
fi
# Stop the broker itself (strace's child) with SIGTERM: a graceful shutdown; strace then exits.
kill -TERM $(pgrep -P "$broker_pid") 2>/dev/null || true
wait "$broker_pid" 2>/dev/null || true
broker_pid=""
grep -q "stopped cleanly" "$tmp/broker.log" || { echo "broker did not stop cleanly:"; cat "$tmp/broker.log"; exit 1; }

calls=$(grep -c 'sendfile(' "$tmp/trace" || true)
sent=$native_sent
echo "zero-copy (native protocol): sendfile moved $sent bytes; the log holds $stored bytes of batches; 20000 records read back ($calls sendfile calls in all)"
grep 'sendfile(' "$tmp/trace" | head -3 | sed 's/^/  strace: /'
if [ "$calls" -eq 0 ] || [ "$sent" -lt "$stored" ]; then
  echo "zero-copy proof FAILED: fetched batches did not go out through sendfile" >&2
  exit 1
fi
echo "zero-copy proof passed"
