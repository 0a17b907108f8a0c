"""A leader killed with kill -9 under load, seen by unchanged Kafka clients (run by
cluster-check.sh, which starts etcd and three `spool broker --etcd` processes and restarts
the killed one between phases).

  python cluster_failover_check.py confluent   # phase 1
  python cluster_failover_check.py kafka-python  # phase 2

Phase 1, confluent-kafka: an idempotent acks=all producer (RF 3, min.insync.replicas 2, 3
partitions) sends RECORDS values while partition 0's leader is killed a third of the way in;
every record is acknowledged, each acknowledged value reads back at the offset it was
acknowledged with, no offset holds two values and no value two offsets; the longest pause in
partition 0's acknowledgements (the failover as the client sees it) is printed and bounded.
Phase 2, kafka-python: the same with kafka-python's idempotent producer and a kafka-python
consumer reading the partition while its leader is killed.
Both print the killed node id on a line `killed N` for the script to restart it."""
import os
import signal
import sys
import threading
import time

from common import check, ok, unique

BOOTSTRAP = os.environ["CLUSTER_BOOTSTRAP"]
PIDS = {int(k): int(v) for k, v in (item.split("=") for item in os.environ["CLUSTER_PIDS"].split(","))}
RECORDS = int(os.environ.get("CLUSTER_RECORDS", "6000"))
FAILOVER_LIMIT_S = float(os.environ.get("CLUSTER_FAILOVER_LIMIT_S", "10"))


def create_topic(name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=3,
                                            config={"min.insync.replicas": "2"})], request_timeout=20)
    futures[name].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if topic and topic.error is None and len(topic.partitions) == partitions and all(
                p.leader >= 1 and len(p.isrs) == 3 for p in topic.partitions.values()):
            return admin
        time.sleep(0.2)
    check(False, f"{name}: not every partition got a leader and a full ISR in 30 s")


def leader_of(admin, topic, partition):
    return admin.list_topics(topic, timeout=10).topics[topic].partitions[partition].leader


def kill_leader(admin, topic):
    victim = leader_of(admin, topic, 0)
    check(victim in PIDS, f"partition 0's leader {victim} is not one of {sorted(PIDS)}")
    os.kill(PIDS[victim], signal.SIGKILL)
    print(f"killed {victim}", flush=True)
    return victim, time.monotonic()


def verify(acked, read, what):
    """acked and read: value -> (partition, offset); every acked value read where it was acked."""
    by_offset = {}
    for value, where in read.items():
        check(where not in by_offset, f"{what}: offset {where} holds {by_offset.get(where)} and {value}")
        by_offset[where] = value
    missing = [v for v in acked if v not in read]
    check(not missing, f"{what}: {len(missing)} acknowledged records not read back, e.g. {missing[:3]}")
    moved = [(v, acked[v], read[v]) for v in acked if read[v] != acked[v]]
    check(not moved, f"{what}: records read at other offsets than acknowledged: {moved[:3]}")


def longest_gap(times, after):
    """The longest pause between acknowledgement times around `after` (the kill)."""
    times = sorted(times)
    gaps = [b - a for a, b in zip(times, times[1:]) if b >= after]
    return max(gaps) if gaps else 0.0


def confluent_phase():
    from confluent_kafka import Consumer, Producer, TopicPartition
    topic = unique("failover")
    admin = create_topic(topic, 3)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 90000, "retry.backoff.ms": 50})
    acked, failed, p0_times = {}, [], []

    def delivered(err, msg):
        if err is not None:
            failed.append(str(err))
            return
        acked[msg.value()] = (msg.partition(), msg.offset())
        if msg.partition() == 0:
            p0_times.append(time.monotonic())

    killed_at = None
    for i in range(RECORDS):
        producer.produce(topic, key=b"k%d" % (i % 60), value=b"v%07d" % i, on_delivery=delivered)
        producer.poll(0.0005)  # about 1,000-2,000 records/s: the kill lands mid-stream
        if i == RECORDS // 3:
            producer.flush(30)
            victim, killed_at = kill_leader(admin, topic)
    left = producer.flush(120)
    check(left == 0 and not failed, f"confluent-kafka: {left} records unsent, failures {failed[:3]}")
    check(len(acked) == RECORDS, f"confluent-kafka: {len(acked)} of {RECORDS} acknowledged")
    gap = longest_gap(p0_times, killed_at)
    print(f"confluent-kafka: partition 0's acknowledgements paused {gap:.2f} s across the kill of broker {victim}", flush=True)
    check(gap < FAILOVER_LIMIT_S, f"failover took {gap:.2f} s (limit {FAILOVER_LIMIT_S} s)")

    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("fo"), "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    read, twice = {}, []
    deadline = time.monotonic() + 90
    while len(read) < RECORDS and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error() is not None:
            continue
        if message.value() in read:
            twice.append(message.value())
        read[message.value()] = (message.partition(), message.offset())
    consumer.close()
    check(not twice, f"confluent-kafka: values stored twice: {twice[:3]}")
    verify(acked, read, "confluent-kafka")
    ok(f"confluent-kafka: {RECORDS} idempotent acks=all records through a leader kill, each read back once at its offset")


def kafka_python_phase():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    topic = unique("failover-kp")
    admin = create_topic(topic, 1)
    servers = BOOTSTRAP.split(",")
    read, twice, stop = {}, [], threading.Event()

    def consume():
        consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, auto_offset_reset="earliest")
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        while not stop.is_set() or len(read) < RECORDS:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    if r.value in read:
                        twice.append(r.value)
                    read[r.value] = (r.partition, r.offset)
            if stop.is_set() and time.monotonic() > stop.deadline:
                break
        consumer.close()

    reader = threading.Thread(target=consume)
    reader.start()
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True, linger_ms=5,
                             retries=2**31 - 1, delivery_timeout_ms=90000, request_timeout_ms=10000)
    futures, times = [], []
    killed_at = None
    for i in range(RECORDS):
        value = b"p%07d" % i
        future = producer.send(topic, value=value)
        future.add_callback(lambda m: times.append(time.monotonic()))
        futures.append((value, future))
        if i % 200 == 0:
            time.sleep(0.05)
        if i == RECORDS // 3:
            producer.flush(30)
            victim, killed_at = kill_leader(admin, topic)
    producer.flush(120)
    acked = {}
    for value, future in futures:
        metadata = future.get(timeout=60)  # raises if the record was not acknowledged
        acked[value] = (metadata.partition, metadata.offset)
    producer.close()
    gap = longest_gap(times, killed_at)
    print(f"kafka-python: acknowledgements paused {gap:.2f} s across the kill of broker {victim}", flush=True)
    stop.deadline = time.monotonic() + 60
    stop.set()
    reader.join(90)
    check(not reader.is_alive(), "kafka-python consumer did not finish")
    check(not twice, f"kafka-python: values read twice: {twice[:3]}")
    verify(acked, read, "kafka-python")
    check(gap < FAILOVER_LIMIT_S, f"failover took {gap:.2f} s (limit {FAILOVER_LIMIT_S} s)")
    ok(f"kafka-python: {RECORDS} idempotent acks=all records through a leader kill, read by a consumer across it")


if __name__ == "__main__":
    {"confluent": confluent_phase, "kafka-python": kafka_python_phase}[sys.argv[1]]()
