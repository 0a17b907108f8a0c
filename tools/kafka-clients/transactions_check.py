"""Transactions with unchanged clients against Spool: confluent-kafka (librdkafka 2.x) and
kafka-python transactional producers commit and abort; a read_committed consumer sees only
committed records, a read_uncommitted one sees both; ListOffsets latest under read_committed
stops at an open transaction (the LSO); a zombie producer of the same transactional id is
fenced; an empty transaction commits."""
import os
import subprocess
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition

from common import BOOTSTRAP, check, fail, ok, unique


def create_topic(partitions=2):
    topic = unique("txn")
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(15)
    return topic


def read_all(topic, partitions, isolation, expect_at_least=0, idle_s=2.0):
    """Every value of the topic as a consumer with `isolation` sees it (assign mode, from the start)."""
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("g"), "isolation.level": isolation,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values = []
    last = time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None:
            if len(values) >= expect_at_least and time.monotonic() - last > idle_s:
                break
            continue
        if m.error():
            fail(f"consumer error: {m.error()}")
        values.append(m.value().decode())
        last = time.monotonic()
    c.close()
    return values


def confluent_commit_and_abort():
    topic = create_topic()
    p = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": unique("tid")})
    p.init_transactions(20)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=f"c{i}", partition=i % 2)
    p.commit_transaction(20)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic, value=f"a{i}", partition=i % 2)
    p.flush(10)
    p.abort_transaction(20)
    p.begin_transaction()
    for i in range(10, 14):
        p.produce(topic, value=f"c{i}", partition=i % 2)
    p.commit_transaction(20)
    # An empty transaction commits.
    p.begin_transaction()
    p.commit_transaction(20)
    committed = read_all(topic, 2, "read_committed", expect_at_least=14)
    check(sorted(committed) == sorted(f"c{i}" for i in range(14)), f"read_committed saw {sorted(committed)}")
    everything = read_all(topic, 2, "read_uncommitted", expect_at_least=24)
    check(sorted(everything) == sorted([f"c{i}" for i in range(14)] + [f"a{i}" for i in range(10)]),
          f"read_uncommitted saw {sorted(everything)}")
    ok("confluent-kafka: commit, abort, commit, empty commit; read_committed sees only the 14 committed, "
       "read_uncommitted all 24")


def confluent_lso_and_open_transaction():
    topic = create_topic(1)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": unique("tid")})
    p.init_transactions(20)
    p.begin_transaction()
    p.produce(topic, value="c0", partition=0)
    p.commit_transaction(20)
    p.begin_transaction()
    p.produce(topic, value="open", partition=0)
    p.flush(10)
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("g"), "isolation.level": "read_committed"})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    # librdkafka asks ListOffsets with the consumer's isolation level: latest = LSO (the open txn's first offset).
    check(high == 2, f"read_committed high offset {high}, expected the LSO 2 (c0 + its marker)")
    seen = read_all(topic, 1, "read_committed", expect_at_least=1)
    check(seen == ["c0"], f"read_committed read past the open transaction: {seen}")
    p.commit_transaction(20)
    seen = read_all(topic, 1, "read_committed", expect_at_least=2)
    check(seen == ["c0", "open"], f"after commit: {seen}")
    c.close()
    ok("confluent-kafka: an open transaction holds read_committed readers and ListOffsets at the LSO")


def confluent_zombie_fenced():
    topic = create_topic(1)
    tid = unique("tid")
    zombie = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": tid})
    zombie.init_transactions(20)
    zombie.begin_transaction()
    zombie.produce(topic, value="zombie", partition=0)
    zombie.flush(10)
    fresh = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": tid})
    fresh.init_transactions(20)  # aborts the zombie's open transaction, bumps the epoch
    fresh.begin_transaction()
    fresh.produce(topic, value="fresh", partition=0)
    fresh.commit_transaction(20)
    try:
        zombie.produce(topic, value="zombie-2", partition=0)
        zombie.commit_transaction(20)
        fail("the zombie producer committed")
    except KafkaException as e:
        err = e.args[0]
        check(err.fatal() or "fenced" in str(err).lower() or "epoch" in str(err).lower(), f"zombie error: {err}")
    seen = read_all(topic, 1, "read_committed", expect_at_least=1)
    check(seen == ["fresh"], f"read_committed saw {seen}")
    ok("confluent-kafka: a second producer with the same transactional.id fences the first and aborts its transaction")


def kafka_python_commit_and_abort():
    topic = create_topic(1)
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, transactional_id=unique("tid"))
    p.init_transactions()
    p.begin_transaction()
    for i in range(5):
        p.send(topic, value=f"k{i}".encode(), partition=0)
    p.commit_transaction()
    p.begin_transaction()
    for i in range(5):
        p.send(topic, value=f"x{i}".encode(), partition=0)
    p.flush()  # sent, so that the abort has records to abort (unsent ones are dropped)
    p.abort_transaction()
    p.close()

    def kp_read(isolation, want):
        c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, isolation_level=isolation, enable_auto_commit=False,
                          consumer_timeout_ms=3000)
        tp = KTopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        values = [m.value.decode() for m in c]
        c.close()
        return values

    committed = kp_read("read_committed", 5)
    check(committed == [f"k{i}" for i in range(5)], f"kafka-python read_committed saw {committed}")
    everything = kp_read("read_uncommitted", 10)
    check(sorted(everything) == sorted([f"k{i}" for i in range(5)] + [f"x{i}" for i in range(5)]),
          f"kafka-python read_uncommitted saw {everything}")
    both = read_all(topic, 1, "read_committed", expect_at_least=5)
    check(both == committed, f"confluent read_committed saw {both}")
    ok("kafka-python: transactional commit and abort; read_committed sees only the committed 5, read_uncommitted all 10")


def spool_consume_isolation():
    """Spool's own consumer: `spool consume --isolation read_committed` skips the aborted transaction."""
    spool, native = os.environ.get("spool"), os.environ.get("native")
    if not spool or not native:
        ok("spool consume --isolation: skipped (no $spool / $native)")
        return
    topic = create_topic(1)
    p = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": unique("tid")})
    p.init_transactions(20)
    for committed, prefix in ((True, "c"), (False, "a"), (True, "d")):
        p.begin_transaction()
        for i in range(3):
            p.produce(topic, value=f"{prefix}{i}", partition=0)
        p.flush(10)
        p.commit_transaction(20) if committed else p.abort_transaction(20)

    def consume(isolation):
        out = subprocess.run([spool, "consume", topic, "--from", "beginning", "--exit-at-end", "--isolation", isolation]
                             + native.split(), capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, f"spool consume failed: {out.stderr}")
        return out.stdout.split()

    committed = consume("read_committed")
    check(committed == ["c0", "c1", "c2", "d0", "d1", "d2"], f"spool consume read_committed: {committed}")
    everything = consume("read_uncommitted")
    check(everything == ["c0", "c1", "c2", "a0", "a1", "a2", "d0", "d1", "d2"], f"spool consume read_uncommitted: {everything}")
    ok("spool consume: --isolation read_committed skips the aborted transaction and the markers, read_uncommitted shows it")


def main():
    spool_consume_isolation()
    confluent_commit_and_abort()
    confluent_lso_and_open_transaction()
    confluent_zombie_fenced()
    kafka_python_commit_and_abort()


if __name__ == "__main__":
    main()
