#!/usr/bin/env bash
# Builds librdkafka's own load tool, rdkafka_performance, from Debian's librdkafka source
# package against Debian's librdkafka (no other network than Debian's archive).
# Prints the path of the binary; caches it under .build/peers/.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build/peers/rdkafka_performance
if [ -x "$out" ]; then echo "$out"; exit 0; fi
need=()
for pkg in librdkafka-dev gcc dpkg-dev; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
list=/etc/apt/sources.list.d/spool-deb-src.sources
if [ ! -f "$list" ]; then
  # deb-src for the suite the machine already uses, so `apt-get source` finds librdkafka.
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$suite" > "$list"
  apt-get update -qq >&2
fi
if [ ${#need[@]} -gt 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source --download-only -qq librdkafka >/dev/null 2>&1)
tar -xzf "$work"/librdkafka_*.orig.tar.gz -C "$work"
src=$(find "$work" -maxdepth 1 -type d -name 'librdkafka-*' | head -1)
# The example includes librdkafka's internal headers for its clock and thread helpers,
# which want a generated config.h: a minimal one is enough.
printf '#define WITH_LIBDL 1\n#define HAVE_PTHREAD_SETNAME_GNU 1\n' > "$src/config.h"
mkdir -p "$(dirname "$out")"
gcc -O2 -o "$out" "$src/examples/rdkafka_performance.c" -I"$src/src" -lrdkafka -lpthread -lm
echo "$out"
