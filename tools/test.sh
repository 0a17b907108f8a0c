#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the Swift test suite,
# then the interop check against kafka-python (an independent Kafka implementation)
# the zero-copy proof (strace shows fetched batches leaving through sendfile), and the
# Kafka clients (kcat, kafka-python, confluent-kafka, aiokafka) against a real broker, and
# the operating checks (promtool on /metrics, the web console in headless Chromium).
# Before building: the layering check (listeners never import the storage layer).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
python3 tools/generate-kafka.py --check
tools/check-layers.sh
swift build
swift test
tools/interop/check.sh
tools/zero-copy-proof.sh
tools/kafka-clients/check.sh
tools/console/check.sh
