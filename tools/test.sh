#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the Swift test suite,
# then the interop check against kafka-python (an independent Kafka implementation)
# and the zero-copy proof (strace shows fetched batches leaving through sendfile).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build
swift test
tools/interop/check.sh
tools/zero-copy-proof.sh
