"""confluent-kafka (librdkafka 2.x) against Spool: AdminClient create/describe/delete topics
and add partitions, an idempotent acks=all producer, and a consumer group."""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                  NewPartitions, NewTopic)

from common import BOOTSTRAP, check, ok, unique, wait_until


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic = unique("ck")
    for name, future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                                      config={"retention.ms": "3600000"})]).items():
        future.result(timeout=30)
    duplicate = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic]
    try:
        duplicate.result(timeout=30)
        check(False, "creating an existing topic must fail")
    except Exception as error:
        check("TOPIC_ALREADY_EXISTS" in str(error) or "already exists" in str(error), f"duplicate create: {error}")
    ok(f"AdminClient created {topic} (and refused to create it twice)")

    metadata = admin.list_topics(topic, timeout=30)
    check(len(metadata.topics[topic].partitions) == 2, "the topic has 2 partitions")
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    check(configs["retention.ms"].value == "3600000", f"retention.ms override described: {configs['retention.ms'].value}")
    ok("AdminClient described the topic and its configs")

    change = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("segment.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    admin.incremental_alter_configs([change])[change].result(timeout=30)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    check(configs["retention.ms"].value == "7200000", f"retention.ms after the change: {configs['retention.ms'].value}")
    check(configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "an override is reported as a topic config")
    check(configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value, "a default is reported as a default")
    ok("AdminClient changed a topic config (IncrementalAlterConfigs) and read it back")

    admin.create_partitions([NewPartitions(topic, 4)])[topic].result(timeout=30)
    wait_until(lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 4, 30, "4 partitions in metadata")
    ok("AdminClient added partitions (2 -> 4)")

    delivered = []
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all",
                         "compression.type": "lz4", "linger.ms": 5})

    def on_delivery(error, message):
        check(error is None, f"delivery failed: {error}")
        delivered.append((message.partition(), message.offset()))

    for i in range(500):
        producer.produce(topic, key=f"k{i}", value=f"v{i}", partition=i % 4, on_delivery=on_delivery)
    check(producer.flush(30) == 0, "every message delivered")
    check(len(delivered) == 500 and all(o >= 0 for _, o in delivered), "500 deliveries with offsets")
    ok("idempotent acks=all producer delivered 500 records")

    group = unique("ck-group")
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "session.timeout.ms": 10000})
    consumer.subscribe([topic])
    values = []

    def read():
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value().decode())
        return len(values) >= 500

    wait_until(read, 90, "the group consumer to read 500 records", step_s=0)
    check(sorted(values) == sorted(f"v{i}" for i in range(500)), "read exactly the records written")
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition(topic, p) for p in range(4)], timeout=30)
    check(sum(tp.offset for tp in committed) == 500, f"committed offsets add up to 500: {[tp.offset for tp in committed]}")
    consumer.close()
    ok("the group consumer read all 500 records and committed")

    for name, future in admin.delete_topics([topic]).items():
        future.result(timeout=30)
    wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, 30, "the topic to disappear")
    ok("AdminClient deleted the topic")


if __name__ == "__main__":
    main()
    sys.exit(0)
