#!/usr/bin/env bash
# Interop check with kafka-python, an independent Kafka v2 implementation from PyPI.
#   check.sh             Spool writes batches (every codec); kafka-python must validate
#                        their CRCs and read back exactly the records Spool wrote.
#   check.sh --fixtures  Regenerate Tests/SpoolRecordsTests/Fixtures/kafka-python
#                        (batches written by kafka-python, parsed by Spool's tests).
# Sets up its own virtual environment under .build/ from PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.build/interop-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import kafka, lz4, crc32c, snappy, zstandard' 2>/dev/null; then
  echo "setting up $venv (kafka-python, lz4, crc32c, python-snappy, zstandard from PyPI)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'kafka-python==3.0.12' lz4 crc32c python-snappy zstandard
fi
if [ "${1:-}" = "--fixtures" ]; then
  exec "$venv/bin/python" tools/interop/kafka_python_fixtures.py Tests/SpoolRecordsTests/Fixtures/kafka-python
fi
spool=.build/debug/spool
[ -x "$spool" ] || swift build --product spool
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$spool" debug make-batches --out "$out" >/dev/null
"$venv/bin/python" tools/interop/kafka_python_verify.py "$out"
echo "interop: kafka-python read Spool's batches for every codec"
