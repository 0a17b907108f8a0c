"""One consumer group, two protocols: a kafka-python consumer and a `spool consume --group`
process (Spool's native protocol) split a 4-partition topic through the same coordinator;
when the Spool process is killed, kafka-python takes its partitions over."""
import os
import subprocess
import threading

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from common import BOOTSTRAP, check, ok, unique, wait_until

SPOOL = os.environ["spool"]
NATIVE = os.environ["native"].split()


def produce(topic, prefix):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5)
    values = {f"{prefix}-p{p}-{i}" for p in range(4) for i in range(10)}
    for v in sorted(values):
        producer.send(topic, value=v.encode(), partition=int(v.split("-p")[1].split("-")[0]))
    producer.flush(timeout=30)
    producer.close()
    return values


class KafkaMember(threading.Thread):
    def __init__(self, group, topic):
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(
            bootstrap_servers=BOOTSTRAP, group_id=group, auto_offset_reset="earliest", enable_auto_commit=True,
            auto_commit_interval_ms=500, session_timeout_ms=10000, heartbeat_interval_ms=500)
        self.consumer.subscribe([topic])
        self.seen, self.assigned, self.lock, self.stop = set(), set(), threading.Lock(), threading.Event()
        self.start()

    def run(self):
        while not self.stop.is_set():
            batches = self.consumer.poll(timeout_ms=200)
            with self.lock:
                for batch in batches.values():
                    self.seen.update(r.value.decode() for r in batch)
                self.assigned = {p.partition for p in self.consumer.assignment()}
        self.consumer.close()

    def snapshot(self):
        with self.lock:
            return set(self.seen), set(self.assigned)


class SpoolMember:
    """`spool consume --group` printing 'partition value' lines, read in a thread."""

    def __init__(self, group, topic):
        self.process = subprocess.Popen(
            [SPOOL, "consume", topic, "--group", group, "--from", "beginning", "--format", "%p %v\\n", *NATIVE],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines, self.lock = [], threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            with self.lock:
                self.lines.append(line.split())

    def snapshot(self):
        with self.lock:
            return {v for _, v in self.lines}, {int(p) for p, _ in self.lines}


def main():
    topic, group = unique("mixed"), unique("mixed-group")
    KafkaAdminClient(bootstrap_servers=BOOTSTRAP).create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    first = produce(topic, "first")
    kafka_member = KafkaMember(group, topic)
    spool_member = SpoolMember(group, topic)
    try:
        def split():
            kv, kp = kafka_member.snapshot()
            sv, sp = spool_member.snapshot()
            return kv | sv >= first and len(kp) == 2 and len(sp) == 2
        wait_until(split, 60, "the two members to share the partitions and read everything")
        kv, kp = kafka_member.snapshot()
        sv, sp = spool_member.snapshot()
        check(kp.isdisjoint(sp) and kp | sp == {0, 1, 2, 3}, f"partitions split: kafka-python {kp}, spool {sp}")
        check(not (kv & sv), "no record was read by both members")
        ok(f"kafka-python read partitions {sorted(kp)}, spool consume partitions {sorted(sp)}")

        spool_member.process.kill()
        spool_member.process.wait(timeout=10)
        second = produce(topic, "second")
        wait_until(lambda: kafka_member.snapshot()[0] >= second, 60, "kafka-python to take over the Spool member's partitions")
        check(kafka_member.snapshot()[1] == {0, 1, 2, 3}, "kafka-python owns every partition")
        ok("after the Spool member died, kafka-python read all of its partitions")
    finally:
        if spool_member.process.poll() is None:
            spool_member.process.kill()
        kafka_member.stop.set()
        kafka_member.join(timeout=30)


if __name__ == "__main__":
    main()
