#!/usr/bin/env python3
"""Writes Kafka v2 record batch fixtures with kafka-python, an independent
implementation, for Spool's tests to parse.

For each codec (none, gzip, snappy, lz4, zstd) it writes <codec>.bin (two
batches laid end to end, as in a segment file) and <codec>.json (the records
those batches hold: offset, timestamp, key, value, headers; bytes as hex, null
as null). kafka-python writes snappy in the xerial framing (as Kafka's Java
client) and zstd as one frame stating its content size (as librdkafka). Two
more variants re-encode the records of kafka-python's uncompressed batches the
way the other family of clients does, with the same manifests:
  snappy-raw.bin   one raw snappy block (python-snappy), as librdkafka writes it;
  zstd-stream.bin  a streamed zstd frame without a content size (zstandard's
                   stream writer), as Kafka's Java client (zstd-jni) writes it.
And zeros-4MiB-stream.zst: 4 MiB of zeros as one streamed zstd frame (no content
size), for the decompression-bomb test of the streaming path.

Usage: kafka_python_fixtures.py OUT_DIR   (run by tools/interop/check.sh --fixtures)
"""
import io
import json
import struct
import sys
from pathlib import Path

import crc32c
import snappy
import zstandard
from kafka.record.default_records import DefaultRecordBatchBuilder

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
HEADER_BYTES = 61  # a v2 batch header; the records section follows
ATTRIBUTES_AT = 21  # int16; the CRC-32C at 17 covers everything from here on


def zstd_stream(data):
    """A zstd frame written as a stream: no content size in its header (zstd-jni's ZstdOutputStream)."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3, write_content_size=False).stream_writer(out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


def recompress(blob, codec, compress):
    """Re-encodes every batch of an uncompressed blob with `compress`, fixing length, codec bits and CRC."""
    out = bytearray()
    position = 0
    while position < len(blob):
        length = struct.unpack_from(">i", blob, position + 8)[0] + 12
        batch = blob[position:position + length]
        records = compress(bytes(batch[HEADER_BYTES:]))
        rebuilt = bytearray(batch[:HEADER_BYTES]) + records
        struct.pack_into(">i", rebuilt, 8, len(rebuilt) - 12)
        attributes = struct.unpack_from(">h", rebuilt, ATTRIBUTES_AT)[0]
        struct.pack_into(">h", rebuilt, ATTRIBUTES_AT, (attributes & ~0x07) | codec)
        struct.pack_into(">I", rebuilt, 17, crc32c.crc32c(bytes(rebuilt[ATTRIBUTES_AT:])))
        out += rebuilt
        position += length
    return bytes(out)
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
        write(out_dir, name, bytes(blob), manifest)
        if name == "none":
            write(out_dir, "snappy-raw", recompress(bytes(blob), 2, snappy.compress), manifest)
            write(out_dir, "zstd-stream", recompress(bytes(blob), 4, zstd_stream), manifest)


    (out_dir / "zeros-4MiB-stream.zst").write_bytes(zstd_stream(bytes(4 << 20)))


def write(out_dir, name, blob, manifest):
    (out_dir / f"{name}.bin").write_bytes(blob)
    (out_dir / f"{name}.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(f"{name}: {len(blob)} bytes, {len(manifest)} records")


if __name__ == "__main__":
    main()
