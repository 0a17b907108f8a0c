#!/usr/bin/env bash
# The test command: installs what is missing, builds (debug, with the tests), runs the Swift
# test suite, builds a package outside the repository that imports SpoolClient
# (tools/client-package/check.sh), then the interop check against kafka-python (an
# independent Kafka implementation), the zero-copy proof (strace shows fetched batches
# leaving through sendfile), the Kafka clients (kcat, kafka-python, confluent-kafka,
# aiokafka) against a real broker, the operating checks (promtool on /metrics, the web
# console in headless Chromium), and librdkafka's own integration tests (Debian's source
# package, built once under .build/) in the suite's quick mode (-Q, as librdkafka's CI runs
# it), failing only on failures not already triaged in README.
# Before building: the layering check (listeners never import the storage layer).
# The release build (Swift's optimizer has crashed on code that builds fine unoptimized)
# runs after the Swift tests, beside the external clients' checks, at the lowest CPU
# priority, in its own scratch directory (.build-release: SwiftPM locks its build
# directory), and tools/release-smoke.sh runs its binaries at the end: those checks mostly
# wait on sockets and timeouts, so the build takes the idle CPU instead of 20 minutes of
# its own on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every step prints its duration; a failing swift test run ends with the list of what failed
# (the run's own output is long, and CI shows only its tail).
logs=$(mktemp -d)
started=$SECONDS
step() {
  local t0=$SECONDS
  "$@"
  echo "== step done in $((SECONDS - t0)) s (total $((SECONDS - started)) s): $*"
}
swift_test() {
  local log="$logs/swift-test-$RANDOM.log" rc=0
  swift test --skip-build "$@" 2>&1 | tee "$log" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "== swift test $* failed; what failed:"
    grep -E '✘|recorded an issue|Expectation failed|Fatal error|error:' "$log" | head -60
    return "$rc"
  fi
}
tools/install-deps.sh
python3 tools/generate-kafka.py --check
tools/check-layers.sh
step swift build --build-tests
# Two runs, one after the other: swift-testing runs every test of a process on the cooperative
# pool (two threads on two cores), and the tests that drive broker and etcd processes wait
# there; the in-process unit suites (EmbeddedChannel, simulated disks, fsync gates) run first,
# on their own, so their waits are not starved by the process tests.
unit='^(SpoolRecordsTests|SpoolProtocolTests|SpoolStorageTests|SpoolBrokerTests|SpoolNativeTests|SpoolKafkaTests|SpoolTransportTests|SpoolSecurityTests)\.'
step swift_test --filter "$unit"
step swift_test --skip "$unit"
# The process suites time kill -9, SIGSTOP and group take-overs: the release build starts
# after them, beside the external clients' checks (which wait on sockets and timeouts).
release_log="$logs/release-build.log"
release_started=$SECONDS
nice -n 19 swift build -c release --scratch-path .build-release >"$release_log" 2>&1 &
release_pid=$!
trap 'kill "$release_pid" 2>/dev/null || true' EXIT
echo "== release build started in the background (nice 19, log $release_log)"
# A package outside the repository builds against the SpoolClient product and runs.
step tools/client-package/check.sh
step tools/interop/check.sh
step tools/zero-copy-proof.sh
step tools/kafka-clients/check.sh
step tools/console/check.sh
LIBRDKAFKA_SUITE_QUICK=1 LIBRDKAFKA_SUITE_KNOWN_FAILURES=tools/kafka-clients/librdkafka-known-failures.txt \
  step tools/kafka-clients/librdkafka-suite.sh "$(tools/kafka-clients/librdkafka-debian-source.sh)" .build/debug/spool
release_rc=0
wait "$release_pid" || release_rc=$?
echo "== release build done $((SECONDS - release_started)) s after it started (rc $release_rc)"
if [ "$release_rc" -ne 0 ]; then
  echo "== the release build failed:"
  grep -E 'error:|fatal|crash|Stack dump' "$release_log" | head -30
  tail -30 "$release_log"
  exit "$release_rc"
fi
step tools/release-smoke.sh .build-release/release
echo "== all tests passed in $((SECONDS - started)) s"
