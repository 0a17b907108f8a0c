#!/usr/bin/env bash
# Layering check (docs/DESIGN.md §5): the listeners (native, Kafka, admin HTTP) read and
# write through the broker core only, so they never import the storage layer, and the
# two protocol listeners never import each other. Checks the sources' imports and the
# targets' dependencies in Package.swift (swift package dump-package). Fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Target -> modules it must not import.
forbidden() {
  case "$1" in
    SpoolNative) echo "SpoolStorage SpoolKafka" ;;
    SpoolKafka) echo "SpoolStorage SpoolNative" ;;
    SpoolAdminHTTP) echo "SpoolStorage SpoolNative SpoolKafka" ;;
    SpoolTransport) echo "SpoolStorage SpoolNative SpoolKafka SpoolAdminHTTP" ;;
  esac
}

failed=0
for target in SpoolNative SpoolKafka SpoolAdminHTTP SpoolTransport; do
  dir="Sources/$target"
  [ -d "$dir" ] || continue
  for module in $(forbidden "$target"); do
    # Any import form: plain, @testable/@_exported/@preconcurrency, or of one declaration.
    if hits=$(grep -rlE "^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*import[[:space:]]+((typealias|struct|class|enum|protocol|let|var|func)[[:space:]]+)?$module([[:space:]]|\.|$)" "$dir"); then
      echo "layering: $target imports $module:" >&2
      echo "$hits" | sed 's/^/  /' >&2
      failed=1
    fi
  done
done

# Its own scratch directory: dump-package reads only the manifest and must not wait for
# the lock of a build running in .build.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
manifest=$(swift package --scratch-path "$scratch" dump-package)
if ! python3 -c '
import json, sys
forbidden = {
    "SpoolNative": {"SpoolStorage", "SpoolKafka"},
    "SpoolKafka": {"SpoolStorage", "SpoolNative"},
    "SpoolAdminHTTP": {"SpoolStorage", "SpoolNative", "SpoolKafka"},
    "SpoolTransport": {"SpoolStorage", "SpoolNative", "SpoolKafka", "SpoolAdminHTTP"},
}
bad = []
for target in json.load(sys.stdin)["targets"]:
    names = set()
    for dep in target.get("dependencies", []):
        for kind in ("byName", "target", "product"):
            if kind in dep and dep[kind]:
                names.add(dep[kind][0])
    tname = target["name"]
    for name in sorted(names & forbidden.get(tname, set())):
        bad.append(tname + " depends on " + name)
for line in bad:
    print("layering: Package.swift: " + line, file=sys.stderr)
sys.exit(1 if bad else 0)
' <<<"$manifest"; then
  failed=1
fi

if [ "$failed" -ne 0 ]; then
  echo "layering check failed: listeners go through SpoolBroker (see docs/DESIGN.md §5)" >&2
  exit 1
fi
echo "layering: listeners import neither SpoolStorage nor each other"
