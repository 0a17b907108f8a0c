#!/usr/bin/env bash
# Installs the system packages Spool needs to build, when they are missing:
# zlib and liblz4 headers, strace for the zero-copy proof, kcat for the Kafka-client checks,
# etcd-server + etcd-client for the cluster tests (no member starts by itself: the tests and
# tools/etcd-local.sh launch them) (Debian packages). Run as root or with sudo available.
set -euo pipefail
needed=(zlib1g-dev liblz4-dev strace kcat etcd-server etcd-client)
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
