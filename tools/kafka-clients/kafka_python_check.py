"""kafka-python against Spool: the default (idempotent) producer, a consumer group of two
splitting a 4-partition topic, a member leaving and its partitions moving, commit and resume."""
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from common import BOOTSTRAP, check, ok, unique, wait_until


def produce(topic, count, prefix):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, compression_type="lz4", linger_ms=5)
    check(producer.config.get("enable_idempotence", False), "kafka-python's producer is idempotent by default")
    futures = [producer.send(topic, key=f"k{i}".encode(), value=f"{prefix}-{i}".encode(), partition=i % 4) for i in range(count)]
    producer.flush(timeout=30)
    offsets = [f.get(timeout=30) for f in futures]
    producer.close()
    return offsets


class Member(threading.Thread):
    """A group member polling in its own thread, as applications do; `seen` collects values."""

    def __init__(self, group, topic):
        super().__init__(daemon=True)
        self.consumer = KafkaConsumer(
            bootstrap_servers=BOOTSTRAP, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
            session_timeout_ms=10000, heartbeat_interval_ms=500, max_poll_interval_ms=60000)
        self.consumer.subscribe([topic])
        self.seen = []
        self.assigned = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.commit_now = threading.Event()
        self.committed = threading.Event()
        self.start()

    def run(self):
        while not self.stop.is_set():
            batches = self.consumer.poll(timeout_ms=300)
            with self.lock:
                for batch in batches.values():
                    self.seen.extend(r.value.decode() for r in batch)
                self.assigned = {p.partition for p in self.consumer.assignment()}
            if self.commit_now.is_set():
                self.commit_now.clear()
                self.consumer.commit()
                self.committed.set()
        self.consumer.close()

    def values(self):
        with self.lock:
            return list(self.seen)

    def partitions(self):
        with self.lock:
            return set(self.assigned)

    def commit(self):
        self.committed.clear()
        self.commit_now.set()
        wait_until(self.committed.is_set, 30, "a commit")

    def leave(self):
        self.stop.set()
        self.join(timeout=30)


def main():
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    topic = unique("kp")
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    ok(f"created {topic} with 4 partitions")

    metas = produce(topic, 200, "first")
    check(len({m.partition for m in metas}) == 4, "records went to all 4 partitions")
    check(all(m.offset >= 0 for m in metas), "every send got an offset")
    ok("idempotent producer wrote 200 records")

    group = unique("kp-group")
    a = Member(group, topic)
    wait_until(lambda: len(a.partitions()) == 4, 60, "the first member to hold all 4 partitions")
    ok("a lone member holds all 4 partitions")
    b = Member(group, topic)  # JoinGroup: a rebalance moves two partitions to the newcomer
    wait_until(lambda: len(a.partitions()) == 2 and len(b.partitions()) == 2 and not (a.partitions() & b.partitions()),
               60, "two members splitting 4 partitions 2/2")
    ok(f"a second member joined and the partitions moved: {sorted(a.partitions())} / {sorted(b.partitions())}")
    first = {f"first-{i}" for i in range(200)}
    wait_until(lambda: set(a.values()) | set(b.values()) >= first, 60, "the group to read all 200 records")
    check(set(a.values()) | set(b.values()) == first, "the group read exactly the records written")
    ok("the group read all 200 records between its members")
    a.commit()
    b.commit()

    b.leave()  # LeaveGroup: its partitions move to a
    wait_until(lambda: len(a.partitions()) == 4, 60, "the remaining member to take all 4 partitions")
    ok("after a member left, the other one holds all 4 partitions")

    before = len(a.values())
    produce(topic, 40, "second")
    wait_until(lambda: len(a.values()) - before >= 40, 60, "the remaining member to read the new records")
    time.sleep(0.5)  # anything read twice would show up here
    after = a.values()[before:]
    check(sorted(after) == sorted(f"second-{i}" for i in range(40)), f"only the 40 new records were read (commits held), got {len(after)}")
    a.commit()
    a.leave()
    ok("the remaining member read only the 40 new records")

    produce(topic, 8, "third")
    resumed = Member(group, topic)
    wait_until(lambda: len(resumed.values()) >= 8, 60, "a new member to resume from the committed offsets")
    time.sleep(0.5)
    check(sorted(resumed.values()) == sorted(f"third-{i}" for i in range(8)), f"resumed at the committed offsets (got {len(resumed.values())} records)")
    resumed.leave()
    ok("a new member resumed from the committed offsets")

    admin.delete_topics([topic])
    admin.close()


if __name__ == "__main__":
    main()
    sys.exit(0)
