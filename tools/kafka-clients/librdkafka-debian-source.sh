#!/usr/bin/env bash
# Brings Debian's librdkafka source package (2.0.2 on bookworm, the library kcat uses) into
# .build/librdkafka-src/ with `apt-get source`, once, and prints the source tree's path.
# apt-get source needs deb-src entries: when the machine has none, this adds them for the
# same Debian mirror and suites the deb entries use (/etc/apt/sources.list.d/spool-deb-src.*),
# then runs apt-get update. Run as root or with sudo available.
# Usage: dir=$(tools/kafka-clients/librdkafka-debian-source.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.build/librdkafka-src
existing=$(ls -d "$dest"/librdkafka-*/ 2>/dev/null | head -1 || true)
if [ -n "$existing" ] && [ -f "$existing/tests/test.c" ]; then
  (cd "$existing" && pwd)
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! grep -rqsE '^(deb-src |Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "adding deb-src entries for Debian's mirror (apt-get source needs them)" >&2
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      | $SUDO tee /etc/apt/sources.list.d/spool-deb-src.sources >/dev/null
  elif [ -f /etc/apt/sources.list ]; then
    grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
      | $SUDO tee /etc/apt/sources.list.d/spool-deb-src.list >/dev/null
  else
    echo "no Debian apt sources found to derive deb-src entries from" >&2
    exit 1
  fi
  $SUDO apt-get update -qq >&2
fi
command -v dpkg-source >/dev/null || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dpkg-dev >&2
mkdir -p "$dest"
(cd "$dest" && apt-get source librdkafka) >&2 || { echo "apt-get source librdkafka failed" >&2; exit 1; }
tree=$(ls -d "$dest"/librdkafka-*/ | head -1)
[ -f "$tree/tests/test.c" ] || { echo "no tests/ in $tree" >&2; exit 1; }
(cd "$tree" && pwd)
