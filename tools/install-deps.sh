#!/usr/bin/env bash
# Installs the system packages Spool needs to build, when they are missing:
# zlib and liblz4 headers, strace for the zero-copy proof, kcat for the Kafka-client checks
# (Debian packages), and what librdkafka's own test suite needs to build from Debian's source
# package (tools/kafka-clients/librdkafka-suite.sh): dpkg-dev for `apt-get source`, libzstd-dev
# for its zstd codec and rapidjson-dev for the tests that check its statistics JSON.
# Run as root or with sudo available.
set -euo pipefail
needed=(zlib1g-dev liblz4-dev strace kcat dpkg-dev libzstd-dev rapidjson-dev)
missing=()
for pkg in "${needed[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
