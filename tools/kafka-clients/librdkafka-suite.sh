#!/usr/bin/env bash
# librdkafka's own integration tests against a fresh `spool broker`.
#
# Builds librdkafka and its test-runner in SRC_DIR (a librdkafka source tree, e.g. from
# `apt-get source librdkafka`) when they are not built yet, starts `spool broker` on loopback
# ephemeral ports with a temporary data directory and --default-partitions 4 (a second one
# with auto.create.topics.enable=false for the suite's `noautocreate` scenario), runs every
# test named in librdkafka-tests.txt (one test-runner process per test, a few at a time,
# each bounded by the suite's own timeouts and a hard limit), prints PASS/FAIL per test and
# a closing "N passed, M failed", stops the brokers and exits non-zero if a test failed.
#
# Usage: tools/kafka-clients/librdkafka-suite.sh SRC_DIR [path/to/spool]   (default .build/release/spool)
# Environment:
#   LIBRDKAFKA_SUITE_PARALLEL   tests run at once (default 2)
#   LIBRDKAFKA_SUITE_TESTS      only tests whose name contains one of these words (space-separated)
#   LIBRDKAFKA_SUITE_LIST       the list file (default tools/kafka-clients/librdkafka-tests.txt)
#   LIBRDKAFKA_SUITE_TIMEOUT_MULTIPLIER  the suite's test.timeout.multiplier (default 2: a shared machine)
#   LIBRDKAFKA_SUITE_LIMIT_SECONDS       hard limit per test-runner process (default 600)
#   LIBRDKAFKA_SUITE_QUICK=1    run every test in the suite's quick mode (-Q), as its CI does
#   LIBRDKAFKA_SUITE_KAFKA_VERSION  the broker version the suite assumes (its TEST_KAFKA_VERSION;
#                               default 3.4.0, the Kafka whose API versions Spool answers; the
#                               suite's own default, 2.4.0, expects some pre-2.7 error codes)
#   LIBRDKAFKA_SUITE_LOGS       keep each test's output in this directory (default: a temp dir, removed)
#   LIBRDKAFKA_SUITE_KNOWN_FAILURES  a file of test names (one a line, '#' comments) that fail for a
#                               reason triaged in the README: the exit status then counts only other
#                               failures, and a known failure that passes is reported
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
[ $# -ge 1 ] || { echo "usage: $0 SRC_DIR [path/to/spool]" >&2; exit 2; }
src=$(cd "$1" 2>/dev/null && pwd) || { echo "no such directory: $1" >&2; exit 2; }
[ -f "$src/tests/test.c" ] || { echo "$src is not a librdkafka source tree (no tests/test.c)" >&2; exit 2; }
spool="${2:-.build/release/spool}"
[ -x "$spool" ] || { echo "no spool executable at $spool (swift build -c release)" >&2; exit 2; }
spool=$(cd "$(dirname "$spool")" && pwd)/$(basename "$spool")
list="${LIBRDKAFKA_SUITE_LIST:-$root/tools/kafka-clients/librdkafka-tests.txt}"
parallel="${LIBRDKAFKA_SUITE_PARALLEL:-2}"
multiplier="${LIBRDKAFKA_SUITE_TIMEOUT_MULTIPLIER:-2}"
limit="${LIBRDKAFKA_SUITE_LIMIT_SECONDS:-600}"
build_jobs=2

# Build librdkafka (plaintext only: no SSL, no GSSAPI) and the test-runner, once per tree.
if [ ! -f "$src/Makefile.config" ]; then
  echo "configuring librdkafka in $src" >&2
  (cd "$src" && ./configure --disable-ssl --disable-gssapi --disable-curl) >"$src/.spool-configure.log" 2>&1 \
    || { tail -20 "$src/.spool-configure.log"; exit 1; }
fi
if [ ! -x "$src/tests/test-runner" ] || [ ! -f "$src/src/librdkafka.so.1" ]; then
  echo "building librdkafka and its test-runner in $src (a few minutes)" >&2
  (cd "$src" && make -j"$build_jobs" libs && make -j"$build_jobs" -C tests build) >"$src/.spool-build.log" 2>&1 \
    || { tail -30 "$src/.spool-build.log"; exit 1; }
fi

tmp=$(mktemp -d)
logs="${LIBRDKAFKA_SUITE_LOGS:-$tmp/logs}"
mkdir -p "$logs"
broker_pids=() test_pids=()
cleanup() {
  for pid in "${test_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${broker_pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${broker_pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_broker NAME [config lines…]: a broker on ephemeral loopback ports; sets $kafka_port.
start_broker() {
  local name=$1
  shift
  mkdir -p "$tmp/$name"
  printf '%s\n' "default.partitions=4" "$@" >"$tmp/$name/broker.properties"
  "$spool" broker --config "$tmp/$name/broker.properties" --data-dir "$tmp/$name/data" \
    --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --http-listen none --default-partitions 4 \
    >"$tmp/$name/broker.log" 2>&1 &
  broker_pids+=($!)
  for _ in $(seq 1 100); do
    grep -q "^Kafka clients: " "$tmp/$name/broker.log" 2>/dev/null && break
    sleep 0.1
  done
  kafka_port=$(sed -n 's/^Kafka clients: [^ ]*:\([0-9][0-9]*\) (advertised.*/\1/p' "$tmp/$name/broker.log" | head -1)
  [ -n "$kafka_port" ] || { echo "broker $name did not start:"; cat "$tmp/$name/broker.log"; exit 1; }
  # The suite reads bootstrap.servers and its own test.* settings from this file.
  cat >"$tmp/$name/test.conf" <<EOF
bootstrap.servers=127.0.0.1:$kafka_port
test.timeout.multiplier=$multiplier
test.topic.random=true
EOF
  echo "broker ($name scenario): Kafka 127.0.0.1:$kafka_port, data $tmp/$name/data"
}

# The listed tests: NAME [SCENARIO] [RUNNER-FLAGS…], comments and blank lines skipped.
names=() scenarios=() flags=()
while read -r name scenario rest; do
  case "$name" in ''|'#'*) continue ;; esac
  if [ -n "${LIBRDKAFKA_SUITE_TESTS:-}" ]; then
    keep=""
    for word in $LIBRDKAFKA_SUITE_TESTS; do [[ "$name" == *"$word"* ]] && keep=1; done
    [ -n "$keep" ] || continue
  fi
  names+=("$name"); scenarios+=("${scenario:-default}"); flags+=("${rest%%#*}")
done <"$list"
[ ${#names[@]} -gt 0 ] || { echo "no tests selected from $list" >&2; exit 2; }

declare -A conf_for
for scenario in $(printf '%s\n' "${scenarios[@]}" | sort -u); do
  case "$scenario" in
    default) start_broker default ;;
    noautocreate) start_broker noautocreate "auto.create.topics.enable=false" ;;
    *) echo "unknown scenario $scenario in $list" >&2; exit 2 ;;
  esac
  conf_for[$scenario]="$tmp/$scenario/test.conf"
done
quick=""
[ "${LIBRDKAFKA_SUITE_QUICK:-}" = 1 ] && quick="-Q"
kafka_version="${LIBRDKAFKA_SUITE_KAFKA_VERSION:-3.4.0}"

# run_one INDEX: one test-runner process for one listed test; writes its verdict file.
# TESTS= matches by number, so -L (no local tests) and -s SCENARIO pick out the named test;
# the verdict is the named test's row in the runner's summary table.
run_one() {
  local i=$1 name=${names[$1]} scenario=${scenarios[$1]}
  local number=${name%%_*} log="$logs/${names[$1]}.log" started=$SECONDS rc state detail
  # shellcheck disable=SC2086
  (cd "$src/tests" && TESTS=$number RDKAFKA_TEST_CONF="${conf_for[$scenario]}" TEST_KAFKA_VERSION="$kafka_version" \
    LD_LIBRARY_PATH="$src/src:$src/src-cpp" \
    timeout --kill-after=10 "$limit" ./test-runner -L -s "$scenario" $quick ${flags[$i]}) >"$log" 2>&1
  rc=$?
  # A summary row: "| NAME | STATE | 1.234s | reason", with ANSI colours.
  local row
  row=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E "^\| +$name +\|" | tail -1)
  state=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $3); print $3}')
  detail=$(echo "$row" | awk -F'|' '{print $5}' | sed 's/^ *//' | cut -c1-200)
  if { [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; } && [ $((SECONDS - started)) -ge "$limit" ]; then
    state=FAILED detail="killed after the hard limit of ${limit}s"
  elif [ -z "$state" ]; then
    state=FAILED detail="no summary row (exit $rc)"
  fi
  if [ "$state" = FAILED ]; then
    # The suite's own failure line: '### Test "NAME" failed at FILE:LINE:FUNC() at DATE: ###' + reason.
    local why
    why=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -A1 -m1 "^### Test \"$name[ \"]" \
      | sed -e '1s/^### Test "[^"]*" failed at \([^ ]*\) at .*/\1:/' | tr '\n' ' ' | cut -c1-240)
    [ -n "$why" ] && detail="$detail${detail:+; }$why"
  elif [ "$state" = PASSED ] && [ "$rc" -ne 0 ]; then
    state=FAILED detail="passed, but test-runner exited $rc"
  fi
  echo "$state $((SECONDS - started)) $detail" >"$tmp/verdict.$i"
  case "$state" in
    PASSED) echo "PASS $name ($((SECONDS - started)) s)" ;;
    SKIPPED) echo "SKIP $name: $detail" ;;
    *) echo "FAIL $name ($((SECONDS - started)) s): $detail" ;;
  esac
}

echo "running ${#names[@]} tests, $parallel at a time (test.timeout.multiplier=$multiplier${quick:+, quick mode})"
started=$SECONDS
test_pids=()
for i in "${!names[@]}"; do
  run_one "$i" &
  test_pids+=($!)
  # At most $parallel at once (the brokers are background jobs too: count only tests).
  while :; do
    alive=0
    for pid in "${test_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    [ "$alive" -lt "$parallel" ] && break
    sleep 0.5
  done
  for pid in "${broker_pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a broker died:"; tail -20 "$tmp"/*/broker.log; exit 1; }
  done
done
for pid in "${test_pids[@]}"; do wait "$pid"; done

passed=0 failed=0 skipped=0
failures=()
for i in "${!names[@]}"; do
  read -r state _ detail <"$tmp/verdict.$i"
  case "$state" in
    PASSED) passed=$((passed + 1)) ;;
    SKIPPED) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); failures+=("${names[$i]}") ;;
  esac
done
for pid in "${broker_pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "a broker died during the run:"; tail -20 "$tmp"/*/broker.log; failed=$((failed + 1)); }
done
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
[ -n "${LIBRDKAFKA_SUITE_LOGS:-}" ] && echo "logs in $logs"
[ "$skipped" -gt 0 ] && echo "$skipped skipped by the suite itself (not counted)"
echo "in $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
if [ -n "${LIBRDKAFKA_SUITE_KNOWN_FAILURES:-}" ]; then
  known=$(sed 's/#.*//' "$LIBRDKAFKA_SUITE_KNOWN_FAILURES" | tr -s ' \t' '\n' | grep -v '^$' || true)
  unexpected=()
  for name in "${failures[@]}"; do grep -qx "$name" <<<"$known" || unexpected+=("$name"); done
  for i in "${!names[@]}"; do
    read -r state _ <"$tmp/verdict.$i"
    [ "$state" = PASSED ] && grep -qx "${names[$i]}" <<<"$known" && echo "note: ${names[$i]} passed but is listed as a known failure"
  done
  echo "$((failed - ${#unexpected[@]})) of the failures are known (triaged in README), ${#unexpected[@]} are not${unexpected[*]:+: ${unexpected[*]}}"
  [ ${#unexpected[@]} -eq 0 ]
else
  [ "$failed" -eq 0 ]
fi
