#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the Swift test suite,
# then the interop check against kafka-python (an independent Kafka implementation).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build
swift test
tools/interop/check.sh
