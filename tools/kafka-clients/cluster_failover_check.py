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
Phase 2b, aiokafka: its idempotent acks=all producer through a kill of the leader, and an
aiokafka consumer reading every record back once at its offset.
Each names the broker it killed in the file $CLUSTER_VICTIM_FILE (and prints `killed N`), for
the script to restart it: a line of the output can run into a client library's log line.
Phase `groups`, confluent-kafka: a consumer group's committed offsets through a kill -9 of
its coordinator (the new coordinator resumes the group exactly after them).
Phase 3 (`isr`), confluent-kafka with SIGSTOP: a follower stopped past
replica.lag.time.max.ms leaves the ISR while acks=all goes on, and rejoins once resumed;
both followers stopped: the ISR shrinks to the leader, acks=all is refused with
NOT_ENOUGH_REPLICAS, and nothing was appended (the high watermark, once both are back, is
where it was)."""
import os
import signal
import sys
import threading
import time

from common import check, ok, unique, verify

BOOTSTRAP = os.environ["CLUSTER_BOOTSTRAP"]
PIDS = {int(k): int(v) for k, v in (item.split("=") for item in os.environ["CLUSTER_PIDS"].split(","))}
HTTP = {int(k): v for k, v in (item.split("=") for item in os.environ["CLUSTER_HTTP"].split(","))}
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
    killed(victim)
    return victim, time.monotonic()


def killed(victim):
    """kill -9 of broker `victim`, told to cluster-check.sh (which restarts it after the phase)."""
    os.kill(PIDS[victim], signal.SIGKILL)
    with open(os.environ["CLUSTER_VICTIM_FILE"], "w") as f:
        f.write(f"{victim}\n")
    print(f"killed {victim}", flush=True)


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


def isr_of(node, topic):
    """The ISR of the topic's partition 0 as broker `node` knows it (`GET /v1/cluster` on its
    admin listener: asking one chosen broker, since a stopped broker's socket still accepts
    and a Kafka client may wait on it)."""
    import json
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://{HTTP[node]}/v1/cluster", timeout=3) as answer:
            view = json.load(answer)
    except OSError:
        return None
    for p in view.get("partitions", []):
        if p["topic"] == topic and p["partition"] == 0:
            return sorted(p["isr"])
    return None


def wait_isr(node, topic, want, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if isr_of(node, topic) == want:
            return time.monotonic()
        time.sleep(0.2)
    check(False, f"{what}: ISR {isr_of(node, topic)}, not {want}, after {seconds} s")


def isr_phase():
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
    topic = unique("isr")
    admin = create_topic(topic, 1)
    leader = leader_of(admin, topic, 0)
    followers = sorted(n for n in PIDS if n != leader)
    lag_s = float(os.environ.get("CLUSTER_LAG_MS", "3000")) / 1000
    leader_addr = BOOTSTRAP.split(",")[leader - 1]
    stopped = []
    try:
        producer = Producer({"bootstrap.servers": leader_addr, "acks": "all", "linger.ms": 1, "message.timeout.ms": 30000})
        errors = []

        def delivered(err, msg):
            if err is not None:
                errors.append(err)

        # One follower stopped: out of the ISR after the lag time, acks=all goes on meanwhile.
        os.kill(PIDS[followers[0]], signal.SIGSTOP)
        stopped.append(followers[0])
        started = time.monotonic()
        sent, shrunk, last_look = 0, None, 0.0
        while time.monotonic() - started < lag_s + 10 and (shrunk is None or time.monotonic() - shrunk < 1):
            producer.produce(topic, value=b"s%06d" % sent, on_delivery=delivered)
            sent += 1
            producer.poll(0.02)
            if shrunk is None and time.monotonic() - last_look > 0.25:
                last_look = time.monotonic()
                if isr_of(leader, topic) == sorted([leader, followers[1]]):
                    shrunk = last_look
        left = producer.flush(30)
        check(left == 0 and not errors, f"acks=all with one follower stopped: {left} unsent, errors {errors[:3]}")
        check(shrunk is not None, f"one follower stopped: the ISR is still {isr_of(leader, topic)} after {lag_s + 10:.0f} s")
        print(f"isr: follower {followers[0]} stopped, ISR shrank to {sorted([leader, followers[1]])} after {shrunk - started:.1f} s "
              f"(replica.lag.time.max.ms {lag_s:.0f} s); {sent} acks=all records acknowledged meanwhile", flush=True)
        # The lag counts from the follower's last fetch that reached the log end, which may be
        # up to one fetch wait (0.5 s) and a little before the SIGSTOP.
        check(shrunk - started >= lag_s - 1.0, f"the ISR shrank after {shrunk - started:.1f} s, well before the lag time")
        os.kill(PIDS[followers[0]], signal.SIGCONT)
        stopped.remove(followers[0])
        resumed = time.monotonic()
        back = wait_isr(leader, topic, sorted([leader] + followers), 20, "the follower resumed")
        print(f"isr: follower {followers[0]} resumed, back in the ISR after {back - resumed:.1f} s", flush=True)
        ok("a stopped follower leaves the ISR after the lag time and rejoins once resumed; acks=all never failed")

        consumer = Consumer({"bootstrap.servers": leader_addr, "group.id": unique("isr")})
        _, hw_before = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        check(hw_before == sent, f"high watermark {hw_before} with the ISR full, {sent} acknowledged")
        # Both followers stopped: ISR = the leader alone, below min.insync.replicas=2.
        for f in followers:
            os.kill(PIDS[f], signal.SIGSTOP)
            stopped.append(f)
        wait_isr(leader, topic, [leader], lag_s + 10, "both followers stopped")
        refuse = Producer({"bootstrap.servers": leader_addr, "acks": "all", "retries": 0, "message.timeout.ms": 10000})
        codes = []
        for i in range(5):
            refuse.produce(topic, value=b"refused-%d" % i, on_delivery=lambda err, msg: codes.append(err.code() if err else None))
        refuse.flush(20)
        check(codes and all(c == KafkaError.NOT_ENOUGH_REPLICAS for c in codes), f"acks=all with ISR [leader]: {codes}")
        for f in followers:
            os.kill(PIDS[f], signal.SIGCONT)
            stopped.remove(f)
        wait_isr(leader, topic, sorted([leader] + followers), 30, "both followers resumed")
        _, hw_after = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.close()
        check(hw_after == hw_before, f"high watermark {hw_before} -> {hw_after}: refused records were appended")
        ok("both followers stopped: NOT_ENOUGH_REPLICAS, nothing appended")
    finally:
        for f in stopped:
            os.kill(PIDS[f], signal.SIGCONT)


def groups_phase():
    """A consumer group through a kill -9 of its coordinator (confluent-kafka): a member reads
    about half of a topic and commits; the coordinator (the leader of the group's
    __consumer_offsets partition, as DescribeConsumerGroups names it) is killed; a new member
    of the group resumes exactly after the committed offsets: every record read once over the
    two members, none twice, and its own commit lands on the new coordinator."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    topic = unique("groups")
    group = unique("g")
    admin = create_topic(topic, 3)
    records = RECORDS // 2
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5})
    for i in range(records):
        producer.produce(topic, key=b"k%d" % (i % 30), value=b"g%07d" % i)
        if i % 500 == 0:
            producer.poll(0)
    check(producer.flush(60) == 0, "groups: records unsent")

    def member():
        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "topic.metadata.refresh.interval.ms": 2000})
        c.subscribe([topic])
        return c

    first, read, twice = member(), {}, []
    deadline = time.monotonic() + 60
    while len(read) < records // 2 and time.monotonic() < deadline:
        m = first.poll(0.5)
        if m is None or m.error() is not None:
            continue
        read[m.value()] = (m.partition(), m.offset())
    check(len(read) >= records // 2, f"groups: the first member read {len(read)} of {records // 2} in 60 s")
    first.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in first.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)}
    first.close()
    expected_rest = {v for v, (p, o) in read.items() if o >= committed.get(p, 0)}
    check(not expected_rest, f"groups: records after the committed offsets were read before the commit: {sorted(expected_rest)[:3]}")
    description = admin.describe_consumer_groups([group])[group].result(20)
    victim = description.coordinator.id
    check(victim in PIDS, f"groups: coordinator {victim} is not one of {sorted(PIDS)}")
    killed(victim)
    killed_at = time.monotonic()

    second, before = member(), len(read)
    first_record_at = None
    deadline = time.monotonic() + 90
    while len(read) < records and time.monotonic() < deadline:
        m = second.poll(0.5)
        if m is None or m.error() is not None:
            continue
        first_record_at = first_record_at or time.monotonic()
        if m.value() in read:
            twice.append((m.value(), m.partition(), m.offset()))
        read[m.value()] = (m.partition(), m.offset())
    second.commit(asynchronous=False)
    after = {tp.partition: tp.offset for tp in second.committed([TopicPartition(topic, p) for p in range(3)], timeout=20)}
    second.close()
    check(not twice, f"groups: records read again after the coordinator kill (committed {committed}): {twice[:3]}")
    check(len(read) == records, f"groups: {len(read)} of {records} read over the two members")
    check(sum(after.values()) == records, f"groups: the second member's commit {after} does not cover {records} records")
    new = admin.describe_consumer_groups([group])[group].result(20).coordinator.id
    print(f"groups: coordinator failover {victim} -> {new}: the group resumed at the committed {committed} "
          f"({records - before} records, first {first_record_at - killed_at:.2f} s after the kill)", flush=True)
    check(new != victim, f"groups: the coordinator is still {victim}")
    ok(f"groups: a consumer group's commits survived a kill -9 of its coordinator; {records} records read once")


def aiokafka_phase():
    """aiokafka's idempotent acks=all producer through a kill -9 of the leader, and an
    aiokafka consumer reading everything back."""
    import asyncio
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition
    topic = unique("failover-aio")
    admin = create_topic(topic, 1)
    records = RECORDS // 2

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, linger_ms=5,
                                    request_timeout_ms=10000, retry_backoff_ms=100, metadata_max_age_ms=2000)
        await producer.start()
        futures, times = [], []
        killed_at = None
        try:
            for i in range(records):
                value = b"a%07d" % i
                future = await producer.send(topic, value=value)
                future.add_done_callback(lambda f: times.append(time.monotonic()))
                futures.append((value, future))
                if i % 100 == 0:
                    await asyncio.sleep(0.05)
                if i == records // 3:
                    await producer.flush()
                    victim, killed_at = kill_leader(admin, topic)
            acked = {}
            for value, future in futures:
                metadata = await asyncio.wait_for(future, timeout=120)  # raises if not acknowledged
                acked[value] = (metadata.partition, metadata.offset)
        finally:
            await producer.stop()
        gap = longest_gap(times, killed_at)
        print(f"aiokafka: acknowledgements paused {gap:.2f} s across the kill of broker {victim}", flush=True)
        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        read, twice = {}, []
        try:
            consumer.assign([TopicPartition(topic, 0)])
            await consumer.seek_to_beginning()
            deadline = time.monotonic() + 90
            while len(read) < records and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for messages in batches.values():
                    for m in messages:
                        if m.value in read:
                            twice.append(m.value)
                        read[m.value] = (m.partition, m.offset)
        finally:
            await consumer.stop()
        check(not twice, f"aiokafka: values read twice: {twice[:3]}")
        verify(acked, read, "aiokafka")
        check(gap < FAILOVER_LIMIT_S, f"failover took {gap:.2f} s (limit {FAILOVER_LIMIT_S} s)")
        ok(f"aiokafka: {records} idempotent acks=all records through a leader kill, each read back once at its offset")

    asyncio.run(run())


if __name__ == "__main__":
    {"confluent": confluent_phase, "kafka-python": kafka_python_phase, "aiokafka": aiokafka_phase, "isr": isr_phase,
     "groups": groups_phase}[sys.argv[1]]()
