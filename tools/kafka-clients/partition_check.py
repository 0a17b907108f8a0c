"""A leader cut off from etcd and the other brokers, and etcd losing its quorum, seen by an
unchanged Kafka client (confluent-kafka). Run by partition-check.sh, which makes the network
namespaces: three hosts (etcd member i and broker i on 10.77.0.i) and this driver on
10.77.0.10, all on one bridge; the driver never runs in the root namespace.

  python partition_check.py drive           # the whole check, inside the driver's namespace
  python partition_check.py isolated ADDR SECONDS OUT   # helper run inside the cut-off host

Phase 1 (partition): RF 3, min.insync.replicas 2, one partition. An idempotent acks=all
producer on the driver runs throughout. The leader's host is cut off from the bridge (its link
down). Inside the cut-off host, an acks=1 producer writes to the old leader (a divergent tail
it acknowledges), an acks=all producer gets no acknowledgement (the deposed leader is fenced),
and a consumer reading the old leader sees nothing of the divergent tail (reads stay below
what it knows is committed). The other two brokers elect a new leader and the driver's
producer goes on. The link comes back: the old leader truncates its divergent tail, rejoins
the ISR and becomes leader again (preferred replica); every acks=all record reads back from it
once, at its acknowledged offset, and no divergent record is anywhere.

Phase 2 (etcd quorum): two of the three etcd members stopped (SIGSTOP) under the acks=all
load, then partition 0's leader killed with kill -9: no new leader takes effect while etcd has
no quorum; once the members resume, a new leader is elected and every acknowledged record
reads back once at its offset."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from common import check, ok, unique, verify

LEASE_TTL_S = 3
LAG_MS = 3000
RECORDS_BEFORE = 2000


class Cluster:
    def __init__(self):
        self.spool = os.environ["PARTITION_SPOOL"]
        self.tmp = os.environ["PARTITION_TMP"]
        self.hosts = os.environ["PARTITION_HOSTS"].split(",")  # namespace of host 1, 2, 3
        self.bridge = os.environ["PARTITION_BRIDGE"]
        self.py = sys.executable
        self.procs = {}
        self.ip = {i: f"10.77.0.{i}" for i in (1, 2, 3)}
        self.etcd_endpoints = ",".join(f"http://{self.ip[i]}:2379" for i in (1, 2, 3))
        self.bootstrap = ",".join(f"{self.ip[i]}:9092" for i in (1, 2, 3))

    def spawn(self, name, host, argv):
        log = open(os.path.join(self.tmp, f"{name}.log"), "ab")
        # `ip netns exec` execs the command itself: the pid is the command's.
        proc = subprocess.Popen(["ip", "netns", "exec", self.hosts[host - 1]] + argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def log(self, name):
        with open(os.path.join(self.tmp, f"{name}.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def start_etcd(self):
        peers = ",".join(f"m{i}=http://{self.ip[i]}:2380" for i in (1, 2, 3))
        for i in (1, 2, 3):
            self.spawn(f"etcd{i}", i, [
                "etcd", "--name", f"m{i}", "--data-dir", os.path.join(self.tmp, f"etcd{i}"),
                "--listen-client-urls", f"http://{self.ip[i]}:2379", "--advertise-client-urls", f"http://{self.ip[i]}:2379",
                "--listen-peer-urls", f"http://{self.ip[i]}:2380", "--initial-advertise-peer-urls", f"http://{self.ip[i]}:2380",
                "--initial-cluster", peers, "--initial-cluster-state", "new",
                "--heartbeat-interval", "100", "--election-timeout", "1000"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self.etcd_healthy(i) for i in (1, 2, 3)):
                return
            time.sleep(0.2)
        check(False, "etcd members not healthy in 30 s:\n" + self.log("etcd1")[-2000:])

    def etcd_healthy(self, i):
        try:
            with urllib.request.urlopen(f"http://{self.ip[i]}:2379/health", timeout=1) as answer:
                return json.load(answer).get("health") == "true"
        except (OSError, ValueError):
            return False

    def start_broker(self, i):
        self.spawn(f"broker{i}", i, [
            self.spool, "broker", "--data-dir", os.path.join(self.tmp, f"broker{i}"),
            "--listen", f"{self.ip[i]}:9292", "--kafka-listen", f"{self.ip[i]}:9092", "--http-listen", f"{self.ip[i]}:8080",
            "--node-id", str(i), "--etcd", self.etcd_endpoints, "--cluster-id", "pc",
            "--cluster-lease-ttl-seconds", str(LEASE_TTL_S), "--replica-lag-time-max-ms", str(LAG_MS)])

    def wait_registered(self, i):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "registered in cluster" in self.log(f"broker{i}"):
                return
            check(self.procs[f"broker{i}"].poll() is None, f"broker {i} exited:\n" + self.log(f"broker{i}")[-2000:])
            time.sleep(0.1)
        check(False, f"broker {i} did not join in 60 s:\n" + self.log(f"broker{i}")[-2000:])

    def view(self, i):
        """`GET /v1/cluster` of broker i, or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://{self.ip[i]}:8080/v1/cluster", timeout=2) as answer:
                return json.load(answer)
        except (OSError, ValueError):
            return None

    def partition(self, i, topic, p=0):
        view = self.view(i)
        for part in (view or {}).get("partitions", []):
            if part["topic"] == topic and part["partition"] == p:
                return part
        return None

    def wait_partition(self, i, topic, condition, seconds, what):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            part = self.partition(i, topic)
            if part is not None and condition(part):
                return part
            time.sleep(0.2)
        check(False, f"{what}: broker {i} shows {self.partition(i, topic)} after {seconds} s")

    def link(self, i, up):
        subprocess.run(["ip", "-n", self.bridge, "link", "set", f"vh{i}", "up" if up else "down"], check=True)

    def stop(self):
        for proc in self.procs.values():
            try:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            except OSError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


def create_topic(cluster, name):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=3,
                                  config={"min.insync.replicas": "2"})], request_timeout=20)[name].result(30)
    return cluster.wait_partition(1, name, lambda p: p["leader"] >= 1 and len(p["isr"]) == 3, 30, f"{name}: full ISR")


class Load:
    """An idempotent acks=all confluent-kafka producer on its own thread, until stopped."""

    def __init__(self, cluster, topic, prefix):
        from confluent_kafka import Producer
        self.producer = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 50,
                                  "socket.connection.setup.timeout.ms": 2000, "topic.metadata.refresh.interval.ms": 1000,
                                  "log_level": 2})
        self.topic, self.prefix = topic, prefix
        self.acked, self.failed, self.sent = {}, [], 0
        self.ack_times = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def delivered(self, err, msg):
        if err is not None:
            self.failed.append(str(err))
            return
        self.acked[msg.value()] = (msg.partition(), msg.offset())
        self.ack_times.append(time.monotonic())

    def run(self):
        while not self.stopping.is_set():
            self.producer.produce(self.topic, value=b"%s%07d" % (self.prefix, self.sent), on_delivery=self.delivered)
            self.sent += 1
            self.producer.poll(0.002)  # about 300-500 records/s

    def start(self):
        self.thread.start()
        return self

    def finish(self, what):
        self.stopping.set()
        self.thread.join(30)
        left = self.producer.flush(150)
        check(left == 0 and not self.failed, f"{what}: {left} records unsent, failures {self.failed[:3]}")
        check(len(self.acked) == self.sent, f"{what}: {len(self.acked)} of {self.sent} acknowledged")
        return self.acked

    def acked_between(self, start, end):
        return sum(1 for t in self.ack_times if start <= t < end)


def read_all(bootstrap, topic, want, seconds=60):
    """value -> (0, offset) in partition 0, read from its leader; fails on a value read twice."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("pc"), "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    read, twice = {}, []
    deadline = time.monotonic() + seconds
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    while (len(read) < want or (read and max(read.values())[1] < high - 1)) and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error() is not None:
            continue
        if message.value() in read:
            twice.append(message.value())
        read[message.value()] = (0, message.offset())
    consumer.close()
    check(not twice, f"{topic}: values read twice: {twice[:3]}")
    return read


def partition_phase(cluster):
    topic = unique("cut")
    part = create_topic(cluster, topic)
    old = part["leader"]
    check(part["replicas"][0] == old, f"the first leader {old} is not the preferred replica {part['replicas']}")
    others = [i for i in (1, 2, 3) if i != old]
    load = Load(cluster, topic, b"a").start()
    while len(load.acked) < RECORDS_BEFORE and not load.failed:
        time.sleep(0.05)
    cluster.link(old, up=False)
    cut_at = time.monotonic()
    print(f"partition: broker {old} (leader, epoch {part['leaderEpoch']}) cut off; {len(load.acked)} acknowledged before", flush=True)
    isolated_out = os.path.join(cluster.tmp, "isolated.json")
    isolated = subprocess.Popen(["ip", "netns", "exec", cluster.hosts[old - 1], sys.executable, __file__, "isolated",
                                 f"{cluster.ip[old]}:9092", "10", isolated_out, topic])
    moved = cluster.wait_partition(others[0], topic, lambda p: p["leader"] in others, 30, "a new leader while cut off")
    elected_at = time.monotonic()
    print(f"partition: broker {moved['leader']} leads at epoch {moved['leaderEpoch']} {elected_at - cut_at:.1f} s after the cut", flush=True)
    check(moved["leaderEpoch"] > part["leaderEpoch"], f"the new leader's epoch {moved['leaderEpoch']} is not above {part['leaderEpoch']}")
    deadline = time.monotonic() + 60
    while load.acked_between(elected_at, time.monotonic()) < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(load.acked_between(elected_at, time.monotonic()) >= 200, "the producer did not go on with the new leader")
    check(isolated.wait(60) == 0, "the producers inside the cut-off host failed")
    with open(isolated_out) as f:
        seen = json.load(f)
    print(f"partition: inside the cut-off host, {seen['acks1']} acks=1 records acknowledged by the old leader, "
          f"{seen['acksall']} acks=all acknowledged, its consumer read {seen['read_divergent']} of them", flush=True)
    check(seen["acks1"] > 0, "the old leader acknowledged no acks=1 record: no divergent tail to truncate")
    check(seen["acksall"] == 0, f"the deposed leader acknowledged {seen['acksall']} acks=all records")
    check(seen["read_divergent"] == 0, f"a consumer of the deposed leader read {seen['read_divergent']} uncommitted records")

    cluster.link(old, up=True)
    healed = time.monotonic()
    back = cluster.wait_partition(others[0], topic, lambda p: p["leader"] == old and len(p["isr"]) == 3, 90,
                                  "the old leader back in the ISR and leading again (preferred replica)")
    print(f"partition: broker {old} back in the ISR and leading (epoch {back['leaderEpoch']}) "
          f"{time.monotonic() - healed:.1f} s after the link came back", flush=True)
    check("(divergent tail)" in cluster.log(f"broker{old}"), f"broker {old} logged no truncation of its divergent tail")
    acked = load.finish("partition: driver's producer")
    read = read_all(f"{cluster.ip[old]}:9092", topic, len(acked))
    divergent = [v for v in read if v.startswith(b"d") or v.startswith(b"f")]
    check(not divergent, f"divergent records survived: {divergent[:3]}")
    verify(acked, read, "partition")
    ok(f"a leader cut off from etcd and its peers: fenced (no acks=all, no uncommitted reads), {seen['acks1']} divergent "
       f"records truncated on return; {len(acked)} acks=all records read back once at their offsets from it")


def quorum_phase(cluster):
    topic = unique("quorum")
    part = create_topic(cluster, topic)
    leader = part["leader"]
    survivor = next(i for i in (1, 2, 3) if i != leader)
    load = Load(cluster, topic, b"q").start()
    while len(load.acked) < RECORDS_BEFORE and not load.failed:
        time.sleep(0.05)
    stopped = [i for i in (1, 2, 3) if i != survivor]  # etcd members: keep the survivor's own member up
    for i in stopped:
        cluster.procs[f"etcd{i}"].send_signal(signal.SIGSTOP)
    lost_at = time.monotonic()
    time.sleep(1)
    cluster.procs[f"broker{leader}"].kill()
    cluster.procs[f"broker{leader}"].wait(10)
    killed_at = time.monotonic()
    print(f"quorum: etcd members {stopped} stopped, then broker {leader} (partition 0's leader) killed; "
          f"{len(load.acked)} acknowledged", flush=True)
    # Longer than the dead broker's lease and a few controller rounds: no leader change may take effect.
    time.sleep(LEASE_TTL_S * 2 + 2)
    seen = cluster.partition(survivor, topic)
    check(seen is not None and seen["leader"] == leader and seen["leaderEpoch"] == part["leaderEpoch"],
          f"a leadership change took effect without an etcd quorum: {seen}")
    acked_during = load.acked_between(killed_at + 1, time.monotonic())
    check(acked_during == 0, f"{acked_during} records acknowledged with the leader dead and etcd out of quorum")
    for i in stopped:
        cluster.procs[f"etcd{i}"].send_signal(signal.SIGCONT)
    resumed = time.monotonic()
    moved = cluster.wait_partition(survivor, topic, lambda p: p["leader"] not in (-1, leader), 60, "a new leader once etcd is back")
    check(moved["leaderEpoch"] == part["leaderEpoch"] + 1, f"the leader changed more than once: epoch {part['leaderEpoch']} → {moved['leaderEpoch']}")
    print(f"quorum: {time.monotonic() - lost_at:.1f} s without quorum; broker {moved['leader']} leads "
          f"{time.monotonic() - resumed:.1f} s after the members resumed", flush=True)
    deadline = time.monotonic() + 60
    while load.acked_between(resumed, time.monotonic()) < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    acked = load.finish("quorum: driver's producer")
    read = read_all(f"{cluster.ip[moved['leader']]}:9092", topic, len(acked))
    verify(acked, read, "quorum")
    ok(f"etcd out of quorum: no leader change took effect; once back, a new leader and all {len(acked)} acknowledged records, once each")


def isolated(address, seconds, out, topic):
    """Inside the cut-off host: acks=1 and acks=all producers and a consumer, all on the old leader."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    counts = {"acks1": 0, "acksall": 0, "read_divergent": 0}

    def counter(key):
        def delivered(err, msg):
            if err is None:
                counts[key] += 1
        return delivered

    quick = {"bootstrap.servers": address, "linger.ms": 5, "log_level": 0, "message.timeout.ms": int(seconds * 1000),
             "request.timeout.ms": int(seconds * 1000)}
    acks1 = Producer(dict(quick, acks="1"))
    acksall = Producer(dict(quick, acks="all"))
    consumer = Consumer({"bootstrap.servers": address, "group.id": unique("iso"), "log_level": 0, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        acks1.produce(topic, value=b"d%07d" % i, on_delivery=counter("acks1"))
        acksall.produce(topic, value=b"f%07d" % i, on_delivery=counter("acksall"))
        i += 1
        acks1.poll(0)
        acksall.poll(0)
        message = consumer.poll(0.01)
        if message is not None and message.error() is None and message.value()[:1] in (b"d", b"f"):
            counts["read_divergent"] += 1
    acks1.flush(seconds + 5)
    acksall.flush(seconds + 5)
    consumer.close()
    with open(out, "w") as f:
        json.dump(counts, f)


def main():
    if sys.argv[1] == "isolated":
        isolated(sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5])
        return
    cluster = Cluster()
    try:
        cluster.start_etcd()
        for i in (1, 2, 3):
            cluster.start_broker(i)
        for i in (1, 2, 3):
            cluster.wait_registered(i)
        partition_phase(cluster)
        quorum_phase(cluster)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
