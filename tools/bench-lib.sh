# Shared by the benchmark scripts (source it): release binaries, a temporary directory removed
# on exit with every process listed in BENCH_PIDS, CPU time of processes, wall clock, free ports.
#   bench_release PRODUCT...  builds them in release (or uses $SPOOL_BIN_DIR) and sets `bin`
#   bench_cpu PID...          their user+system CPU-seconds so far (from /proc/PID/stat)
#   run NAME RECORDS COMMAND...  runs a client (bounded by $limit s, output in $tmp/NAME.out/.err)
#                             and appends "NAME RECORDS wall-seconds broker-CPU-seconds" to
#                             $results, the CPU from the script's own `broker_cpu`
# shellcheck shell=bash
BENCH_PIDS=()
tmp=$(mktemp -d)
bench_cleanup() {
  local p
  for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap bench_cleanup EXIT
bench_release() {
  if [ -n "${SPOOL_BIN_DIR:-}" ]; then bin=$SPOOL_BIN_DIR; return; fi
  local product
  for product in "$@"; do swift build -c release --product "$product" >&2; done
  bin=$(swift build -c release --show-bin-path)
}
bench_ticks=$(getconf CLK_TCK)
bench_cpu() {
  local p total=0
  for p in "$@"; do total=$(echo "$total + $(awk -v t="$bench_ticks" '{printf "%.3f", ($14+$15)/t}' /proc/"$p"/stat)" | bc -l); done
  echo "$total"
}
now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
results="$tmp/results.tsv"
run() {
  local name=$1 n=$2; shift 2
  local c0 t0 c1 t1
  c0=$(broker_cpu); t0=$(now)
  timeout "${limit:-300}" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || { echo "$name failed:" >&2; tail -5 "$tmp/$name.err" >&2; }
  t1=$(now); c1=$(broker_cpu)
  printf '%s\t%s\t%s\t%s\n' "$name" "$n" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$c1 - $c0" | bc -l)" >>"$results"
}
