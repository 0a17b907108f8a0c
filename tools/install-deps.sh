#!/usr/bin/env bash
# Installs the system packages Spool needs to build, when they are missing:
# zlib, liblz4, libsnappy and libzstd headers, strace for the zero-copy proof, kcat for the Kafka-client checks,
# etcd-server + etcd-client for the cluster tests (no member starts by itself: the tests and
# tools/etcd-local.sh launch them), protoc for tools/generate-proto.sh, and what librdkafka's own
# test suite needs to build from Debian's source package (tools/kafka-clients/librdkafka-suite.sh):
# dpkg-dev for `apt-get source`, rapidjson-dev for the tests that check its statistics JSON
# openssl for tools/gen-certs.sh, iproute2 for the network-namespace partition check (Debian packages). Run as root or with sudo available.
set -euo pipefail
needed=(zlib1g-dev liblz4-dev libsnappy-dev libzstd-dev strace kcat etcd-server etcd-client protobuf-compiler dpkg-dev rapidjson-dev openssl iproute2)
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
