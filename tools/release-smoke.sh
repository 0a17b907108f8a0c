#!/usr/bin/env bash
# The release build at work: Swift's optimizer can break code that is fine unoptimized (it
# crashed on SpoolServer once), so the test command builds release and this runs it: a
# release broker, release spool-perf producing 200,000 records with acks=all over two
# partitions and consuming them back, and the release CLI reading them; then a graceful stop.
# Usage: tools/release-smoke.sh [BIN_DIR]   (after `swift build -c release`; default .build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release}
spool=$bin/spool
perf=$bin/spool-perf
[ -x "$spool" ] && [ -x "$perf" ] || { echo "release smoke FAILED: build release first (swift build -c release)" >&2; exit 1; }
tmp=$(mktemp -d)
broker_pid=""
cleanup() {
  if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$spool" broker --data-dir "$tmp/data" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --http-listen none >"$tmp/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 1 600); do
  grep -q "^spool broker .* listening on" "$tmp/broker.log" 2>/dev/null && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\),.*/\1/p' "$tmp/broker.log" | head -1)
[ -n "$port" ] || { echo "release broker did not start:"; cat "$tmp/broker.log"; exit 1; }
records=200000
"$perf" produce --broker "127.0.0.1:$port" --topic smoke --partitions 2 --records $records --acks all --json 2>/dev/null | tail -1
"$perf" consume --broker "127.0.0.1:$port" --topic smoke --records $records --timeout 60 --json 2>/dev/null | tail -1
got=$("$spool" consume smoke --from beginning --exit-at-end --broker "127.0.0.1:$port" | wc -l)
[ "$got" -eq $records ] || { echo "release smoke FAILED: the CLI read $got records of $records" >&2; exit 1; }
kill -TERM "$broker_pid"
status=0
wait "$broker_pid" || status=$?
broker_pid=""
[ "$status" -eq 0 ] || { echo "release smoke FAILED: the broker exited with $status on SIGTERM"; cat "$tmp/broker.log"; exit 1; }
echo "release smoke: $records records produced (acks=all) and consumed by release binaries; graceful stop"
