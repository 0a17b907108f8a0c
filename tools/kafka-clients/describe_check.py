"""DescribeLogDirs and DescribeProducers with kafka-python's KafkaAdminClient: the data
directory lists every partition with its size (and the file system's), and a partition an
idempotent producer wrote to reports that producer with its epoch and last sequence."""
from kafka import KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from common import BOOTSTRAP, check, ok, unique


def main():
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    topic = unique("describe")
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, acks="all", linger_ms=0)
    for i in range(10):
        producer.send(topic, value=f"v{i}".encode(), partition=0).get(timeout=30)
    producer.flush()

    # DescribeLogDirs: the one log directory, both partitions, partition 0 holding the bytes.
    dirs = admin.describe_log_dirs()
    results = [r for broker in (dirs if isinstance(dirs, list) else [dirs]) for r in _results(broker)]
    check(len(results) == 1, f"one log directory: {results}")
    log_dir = results[0]
    sizes = {}
    for t in _get(log_dir, "topics"):
        if _get(t, "name") == topic:
            for p in _get(t, "partitions"):
                sizes[_get(p, "partition_index")] = _get(p, "partition_size")
    check(set(sizes) == {0, 1}, f"both partitions listed: {sizes}")
    check(sizes[0] > 0 and sizes[1] == 0, f"sizes: {sizes}")
    ok(f"describe_log_dirs: {_get(log_dir, 'log_dir')} holds {topic} with sizes {sizes}")

    # DescribeProducers: the idempotent producer, epoch 0, last sequence 9 (10 records, one each).
    states = admin.describe_producers([KTopicPartition(topic, 0), KTopicPartition(topic, 1)])
    active = states[KTopicPartition(topic, 0)].active_producers
    check(len(active) == 1, f"one producer on partition 0: {active}")
    p = active[0]
    check(p.producer_id >= 0 and p.producer_epoch == 0 and p.last_sequence == 9, f"producer state: {p}")
    check(p.last_timestamp > 0, f"last timestamp: {p}")
    check(states[KTopicPartition(topic, 1)].active_producers == [], "no producer on partition 1")
    ok(f"describe_producers: {p}")
    producer.close()
    admin.close()


def _results(broker):
    """kafka-python returns responses (objects) or dicts depending on the version."""
    if isinstance(broker, dict):
        return broker.get("log_dirs") or broker.get("results") or []
    return getattr(broker, "results", None) or getattr(broker, "log_dirs", [])


def _get(obj, name):
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


if __name__ == "__main__":
    main()
