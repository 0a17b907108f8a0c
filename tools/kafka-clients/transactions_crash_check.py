"""Exactly-once consume-transform-produce (confluent-kafka) across a kill -9 of the broker.

Starts its own `spool broker` (the binary in $spool) on a fixed free port, fills an input
topic, and runs a loop that reads input in a consumer group, produces transformed records
and sends the consumer's offsets in the same transaction (TxnOffsetCommit), committing every
few records. Mid-transaction (records produced, not committed) the broker is killed with
SIGKILL and started again on the same data directory and port; a new producer with the same
transactional.id and a new group member resume. The output, read with read_committed, holds
every input record transformed exactly once."""
import os
import signal
import socket
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import check, fail, ok, unique

SPOOL = os.environ["spool"]
TMP = os.environ.get("tmp", "/tmp")
RECORDS = 120
PER_TXN = 10


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_broker(data, port):
    log = open(os.path.join(data + ".log"), "ab")
    proc = subprocess.Popen([SPOOL, "broker", "--data-dir", data, "--listen", "127.0.0.1:0",
                             "--kafka-listen", f"127.0.0.1:{port}", "--http-listen", "none", "--default-partitions", "1"],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    fail("broker did not start")


def loop(bootstrap, src, dst, group, tid, stop_after=None):
    """Runs the transform loop until the input is consumed; with `stop_after`, returns
    mid-transaction after producing that many records of the open transaction."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([src])
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "transaction.timeout.ms": 60000})
    producer.init_transactions(30)
    done = 0
    idle_since = time.monotonic()
    while True:
        msgs = consumer.consume(PER_TXN, 1.0)
        msgs = [m for m in msgs if not m.error()]
        if not msgs:
            if time.monotonic() - idle_since > 8:
                break
            continue
        idle_since = time.monotonic()
        producer.begin_transaction()
        for i, m in enumerate(msgs):
            producer.produce(dst, value=b"out-" + m.value(), partition=0)
            if stop_after is not None and done + i + 1 >= stop_after:
                producer.flush(10)
                return "stopped"
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        done += len(msgs)
    consumer.close()
    return "done"


def main():
    data = os.path.join(TMP, unique("eos-data"))
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    broker = start_broker(data, port)
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        src, dst, group, tid = unique("eos-in"), unique("eos-out"), unique("eos-g"), unique("eos-tid")
        for f in admin.create_topics([NewTopic(src, 1, 1), NewTopic(dst, 1, 1)]).values():
            f.result(15)
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(RECORDS):
            p.produce(src, value=f"r{i:04d}".encode(), partition=0)
        check(p.flush(20) == 0, "input not produced")
        # First run: killed mid-transaction, after 4 committed transactions and 5 records of the fifth.
        check(loop(bootstrap, src, dst, group, tid, stop_after=4 * PER_TXN + 5) == "stopped", "loop ended early")
        broker.send_signal(signal.SIGKILL)
        broker.wait()
        broker = start_broker(data, port)
        # Second run: a new producer with the same transactional id aborts the open one; the
        # group resumes from the offsets committed in the transactions.
        check(loop(bootstrap, src, dst, group, tid) == "done", "second run did not finish")
        out = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("check"), "isolation.level": "read_committed",
                        "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        out.assign([TopicPartition(dst, 0, 0)])
        values = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(values) < RECORDS:
            m = out.poll(0.5)
            if m is not None and not m.error():
                values.append(m.value().decode())
        time.sleep(1)
        while (m := out.poll(0.5)) is not None:
            if not m.error():
                values.append(m.value().decode())
        out.close()
        want = [f"out-r{i:04d}" for i in range(RECORDS)]
        check(values == want, f"output is not exactly-once: {len(values)} records, "
                              f"duplicates {len(values) - len(set(values))}, missing {sorted(set(want) - set(values))[:5]}")
        ok(f"consume-transform-produce: {RECORDS} records exactly once in the output across a kill -9 mid-transaction")
    finally:
        broker.kill()
        broker.wait()


if __name__ == "__main__":
    main()
