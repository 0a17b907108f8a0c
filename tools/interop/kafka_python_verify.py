#!/usr/bin/env python3
"""Reads record batches that Spool built and checks them with kafka-python, an
independent Kafka implementation: every batch's CRC must validate, and its
records must equal the manifest Spool wrote beside it.

Usage: kafka_python_verify.py DIR   (DIR holds <name>.bin + <name>.json pairs,
as written by `spool debug make-batches`). Exits non-zero on any mismatch.
"""
import json
import sys
from pathlib import Path

from kafka.record import MemoryRecords


def hexor(b):
    return None if b is None else bytes(b).hex()


def check(bin_path, json_path):
    expected = json.loads(json_path.read_text())
    records = MemoryRecords(bin_path.read_bytes())
    got = []
    batches = 0
    while True:
        batch = records.next_batch()
        if batch is None:
            break
        batches += 1
        if batch.magic != 2:
            raise SystemExit(f"{bin_path.name}: batch {batches} has magic {batch.magic}")
        if not batch.validate_crc():
            raise SystemExit(f"{bin_path.name}: batch {batches} fails kafka-python's CRC check")
        for r in batch:
            got.append({
                "offset": r.offset, "timestamp": r.timestamp, "key": hexor(r.key), "value": hexor(r.value),
                "headers": [{"key": k, "value": hexor(v)} for k, v in r.headers],
            })
    if got != expected:
        for i, (g, e) in enumerate(zip(got, expected)):
            if g != e:
                raise SystemExit(f"{bin_path.name}: record {i} differs:\n  kafka-python read {g}\n  Spool wrote       {e}")
        raise SystemExit(f"{bin_path.name}: kafka-python read {len(got)} records, Spool wrote {len(expected)}")
    print(f"kafka-python verified {bin_path.name}: {batches} batches, {len(got)} records, CRCs valid")


def main():
    folder = Path(sys.argv[1])
    pairs = sorted(folder.glob("*.bin"))
    if not pairs:
        raise SystemExit(f"no .bin files in {folder}")
    for bin_path in pairs:
        check(bin_path, bin_path.with_suffix(".json"))


if __name__ == "__main__":
    main()
