#!/usr/bin/env python3
"""Reads record batches that Spool built and checks them with kafka-python, an
independent Kafka implementation: every batch's CRC must validate, and its
records must equal the manifest Spool wrote beside it.

Usage: kafka_python_verify.py DIR   (DIR holds <name>.bin + <name>.json pairs,
as written by `spool debug make-batches`). Exits non-zero on any mismatch.
"""
import json
import struct
import sys
from pathlib import Path

from kafka.record import MemoryRecords


def hexor(b):
    return None if b is None else bytes(b).hex()


XERIAL_MAGIC = b"\x82SNAPPY\x00"


def check_framing(bin_path):
    """Spool writes snappy in the xerial framing (what Kafka's Java client writes) and zstd
    as zstd frames: check the bytes, not only that kafka-python could read them."""
    blob = bin_path.read_bytes()
    position = 0
    while position < len(blob):
        length = struct.unpack_from(">i", blob, position + 8)[0] + 12
        codec = struct.unpack_from(">h", blob, position + 21)[0] & 0x07
        records = blob[position + 61:position + length]
        if codec == 2 and not records.startswith(XERIAL_MAGIC):
            raise SystemExit(f"{bin_path.name}: a snappy batch is not in the xerial framing")
        if codec == 4 and not records.startswith(b"\x28\xb5\x2f\xfd"):
            raise SystemExit(f"{bin_path.name}: a zstd batch does not start with a zstd frame")
        position += length


def check(bin_path, json_path):
    check_framing(bin_path)
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
