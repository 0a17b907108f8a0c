#!/usr/bin/env python3
"""Writes Kafka v2 record batch fixtures with kafka-python, an independent
implementation, for Spool's tests to parse.

For each codec (none, gzip, lz4) it writes <codec>.bin (two batches laid end
to end, as in a segment file) and <codec>.json (the records those batches hold:
offset, timestamp, key, value, headers; bytes as hex, null as null).

Usage: kafka_python_fixtures.py OUT_DIR   (run by tools/interop/check.sh --fixtures)
"""
import json
import sys
from pathlib import Path

from kafka.record.default_records import DefaultRecordBatchBuilder

CODECS = {"none": 0, "gzip": 1, "lz4": 3}
BASE_TS = 1_700_000_000_000


def records_for_batch(batch_index):
    if batch_index == 0:
        return [
            (BASE_TS, b"user-1", b'{"event":"login","ok":true}', []),
            (BASE_TS + 5, None, b"keyless value", [("trace", b"abc123"), ("empty", b"")]),
            (BASE_TS + 3, b"k", None, [("nullvalue", None)]),
            (BASE_TS + 100, b"", b"", []),
            (BASE_TS + 7, "ключ".encode(), "значение ✓".encode(), [("ü", "ß".encode())]),
        ]
    out = []
    for i in range(200):
        value = ('{"ts":%d,"user":"user-%04d","action":"%s","path":"/api/v1/items/%d","status":%d,"latency_ms":%d}'
                 % (BASE_TS + 1000 + i, i % 37, ["view", "click", "buy"][i % 3], i * 7, 200 if i % 11 else 500, i % 97))
        out.append((BASE_TS + 1000 + i, b"user-%04d" % (i % 37), value.encode(), []))
    return out


def hexor(b):
    return None if b is None else b.hex()


def main():
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, codec in CODECS.items():
        blob = bytearray()
        manifest = []
        next_offset = 0
        for batch_index in range(2):
            builder = DefaultRecordBatchBuilder(
                magic=2, compression_type=codec, is_transactional=False,
                producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
            recs = records_for_batch(batch_index)
            for delta, (ts, key, value, headers) in enumerate(recs):
                builder.append(delta, timestamp=ts, key=key, value=value, headers=headers)
                manifest.append({
                    "offset": next_offset + delta, "timestamp": ts, "key": hexor(key), "value": hexor(value),
                    "headers": [{"key": k, "value": hexor(v)} for k, v in headers],
                })
            data = bytearray(builder.build())
            # kafka-python builds with base offset 0; place batches at their log offsets as a broker would.
            data[0:8] = next_offset.to_bytes(8, "big", signed=True)
            next_offset += len(recs)
            blob += data
        (out_dir / f"{name}.bin").write_bytes(bytes(blob))
        (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        print(f"{name}: {len(blob)} bytes, {len(manifest)} records")


if __name__ == "__main__":
    main()
