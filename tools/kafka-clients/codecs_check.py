"""Every Kafka codec through unchanged clients, with the stored batches checked byte by byte.

- confluent-kafka (librdkafka 2.x) produces with gzip, snappy, lz4 and zstd; librdkafka writes
  raw snappy blocks and zstd frames that state their size.
- kafka-python produces with snappy and zstd; it writes snappy in the xerial framing, as Kafka's
  Java client does.
- `spool produce --compression snappy|zstd` (Spool's own producer, native protocol) writes xerial
  snappy and zstd; confluent-kafka and kafka-python read those back.

For each, the records are read back exactly, and the partition's segment file (under the
broker's data directory, $tmp/data) holds batches with the codec asked for and the framing the
producer used: the broker stores what it received."""
import os
import struct
import subprocess
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from common import BOOTSTRAP, check, ok, unique, wait_until

CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
XERIAL_MAGIC = b"\x82SNAPPY\x00"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
COUNT = 2000


def create(admin, topic):
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(timeout=30)


def values(prefix):
    return [f'{{"seq":{i},"user":"user-{i % 97}","action":"click","path":"/items/{i % 500}","src":"{prefix}"}}'
            for i in range(COUNT)]


def stored_batches(topic):
    """(codec id, records section) of every batch in the partition's first segment."""
    path = os.path.join(os.environ["tmp"], "data", f"{topic}-0", "00000000000000000000.log")
    blob = open(path, "rb").read()
    batches = []
    position = 0
    while position + 61 <= len(blob):
        length = struct.unpack_from(">i", blob, position + 8)[0] + 12
        check(blob[position + 16] == 2, f"{topic}: batch at {position} has magic {blob[position + 16]}")
        attributes = struct.unpack_from(">h", blob, position + 21)[0]
        batches.append((attributes & 0x07, blob[position + 61:position + length]))
        position += length
    check(position == len(blob), f"{topic}: {len(blob) - position} bytes after the last batch")
    return batches


def check_stored(topic, codec, framing=None):
    batches = stored_batches(topic)
    check(batches, f"{topic}: no batches stored")
    codecs = {c for c, _ in batches}
    check(codecs == {CODEC_IDS[codec]}, f"{topic}: stored codecs {codecs}, asked for {codec} ({CODEC_IDS[codec]})")
    if framing == "xerial":
        check(all(r.startswith(XERIAL_MAGIC) for _, r in batches), f"{topic}: snappy batches are not xerial-framed")
    elif framing == "raw":
        check(not any(r.startswith(XERIAL_MAGIC) for _, r in batches), f"{topic}: snappy batches are xerial, librdkafka writes raw")
    if codec == "zstd":
        check(all(r.startswith(ZSTD_MAGIC) for _, r in batches), f"{topic}: zstd batches do not start with a zstd frame")
    return len(batches)


def confluent_read(topic, count):
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("codec"), "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []

    def read():
        message = consumer.poll(0.5)
        if message is not None:
            check(message.error() is None, f"{topic}: consume error {message.error()}")
            got.append(message.value().decode())
        return len(got) >= count

    wait_until(read, 60, f"confluent-kafka to read {count} records from {topic}", step_s=0)
    consumer.close()
    return got


def kafka_python_read(topic, count):
    consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000)
    got = []
    for message in consumer:
        got.append(message.value.decode())
        if len(got) >= count:
            break
    consumer.close()
    return got


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})

    for codec in ["gzip", "snappy", "lz4", "zstd"]:
        topic = unique(f"cc-{codec}")
        create(admin, topic)
        want = values(f"confluent-{codec}")
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": codec, "linger.ms": 20,
                             "batch.num.messages": 500, "acks": "all"})
        errors = []
        for v in want:
            producer.produce(topic, value=v, on_delivery=lambda e, m: e and errors.append(e))
        check(producer.flush(30) == 0 and not errors, f"{codec}: deliveries failed: {errors[:3]}")
        got = confluent_read(topic, COUNT)
        check(got == want, f"{codec}: confluent-kafka read back other records")
        got = kafka_python_read(topic, COUNT)
        check(got == want, f"{codec}: kafka-python read back other records")
        batches = check_stored(topic, codec, framing="raw" if codec == "snappy" else None)
        ok(f"confluent-kafka {codec}: {COUNT} records in {batches} {codec} batches, read back by both clients")

    for codec in ["snappy", "zstd"]:
        topic = unique(f"kp-{codec}")
        create(admin, topic)
        want = values(f"kafka-python-{codec}")
        producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type=codec, linger_ms=20, batch_size=64 * 1024)
        futures = [producer.send(topic, value=v.encode()) for v in want]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=30)
        producer.close()
        check(confluent_read(topic, COUNT) == want, f"{codec}: confluent-kafka read back other records")
        batches = check_stored(topic, codec, framing="xerial" if codec == "snappy" else None)
        ok(f"kafka-python {codec}: {COUNT} records in {batches} {codec} batches{' (xerial, as the Java client)' if codec == 'snappy' else ''}, read back by confluent-kafka")

    spool = os.environ["spool"]
    native = os.environ["native"].split()
    for codec in ["snappy", "zstd"]:
        topic = unique(f"sp-{codec}")
        create(admin, topic)
        want = values(f"spool-{codec}")
        subprocess.run([spool, "produce", topic, "--compression", codec, "--acks", "all", *native],
                       input="\n".join(want) + "\n", text=True, check=True, timeout=60)
        check(confluent_read(topic, COUNT) == want, f"{codec}: confluent-kafka read back other records from spool produce")
        check(kafka_python_read(topic, COUNT) == want, f"{codec}: kafka-python read back other records from spool produce")
        batches = check_stored(topic, codec, framing="xerial" if codec == "snappy" else None)
        ok(f"spool produce --compression {codec}: {batches} {codec} batches, read back by confluent-kafka and kafka-python")


if __name__ == "__main__":
    main()
