"""Offsets and admin calls users make, against Spool: ListOffsets by timestamp (the first
record at or after it, with its timestamp), -3 max timestamp, earliest and latest, with
confluent-kafka's AdminClient and kafka-python's offsets_for_times; DeleteRecords with both
(low watermark, earliest moves, reads below it reset, errors per partition)."""
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient

from common import BOOTSTRAP, check, ok, unique

BASE_MS = 1_700_000_000_000


def produce(topic, count):
    """count records with timestamps BASE + 10*i, except record 37 which is 1 h later."""
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, "batch.num.messages": 7})
    for i in range(count):
        ts = BASE_MS + 3_600_000 if i == 37 else BASE_MS + 10 * i
        producer.produce(topic, value=f"v{i}", partition=0, timestamp=ts)
    check(producer.flush(30) == 0, "every record delivered")


def list_offset(admin, topic, spec):
    tp = TopicPartition(topic, 0)
    return admin.list_offsets({tp: spec})[tp].result(timeout=30)


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic = unique("lo")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    produce(topic, 100)

    r = list_offset(admin, topic, OffsetSpec.for_timestamp(BASE_MS + 205))
    check((r.offset, r.timestamp) == (21, BASE_MS + 210), f"by timestamp between records: {r.offset} @ {r.timestamp}")
    r = list_offset(admin, topic, OffsetSpec.for_timestamp(BASE_MS + 500))
    check((r.offset, r.timestamp) == (37, BASE_MS + 3_600_000), f"by timestamp, the late record first: {r.offset} @ {r.timestamp}")
    r = list_offset(admin, topic, OffsetSpec.for_timestamp(BASE_MS))
    check((r.offset, r.timestamp) == (0, BASE_MS), f"by timestamp of the first record: {r.offset} @ {r.timestamp}")
    r = list_offset(admin, topic, OffsetSpec.for_timestamp(BASE_MS + 7_200_000))
    check(r.offset == -1, f"by timestamp after every record: {r.offset}")
    ok("AdminClient list_offsets for_timestamp: the first record at or after it, with its timestamp")

    r = list_offset(admin, topic, OffsetSpec.max_timestamp())
    check((r.offset, r.timestamp) == (37, BASE_MS + 3_600_000), f"max timestamp: {r.offset} @ {r.timestamp}")
    check(list_offset(admin, topic, OffsetSpec.earliest()).offset == 0, "earliest")
    check(list_offset(admin, topic, OffsetSpec.latest()).offset == 100, "latest")
    ok("AdminClient list_offsets max_timestamp (-3), earliest, latest")

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP)
    ktp = KTopicPartition(topic, 0)
    found = consumer.offsets_for_times({ktp: BASE_MS + 455})[ktp]
    check(found is not None and (found.offset, found.timestamp) == (37, BASE_MS + 3_600_000), f"kafka-python offsets_for_times: {found}")
    found = consumer.offsets_for_times({ktp: BASE_MS + 7_200_000})[ktp]
    check(found is None, f"kafka-python offsets_for_times after every record: {found}")
    consumer.close()
    ok("kafka-python offsets_for_times")

    delete_records(admin, topic)
    offset_delete(admin, topic)


def offset_delete(admin, topic):
    """OffsetDelete with kafka-python (confluent-kafka's Python AdminClient has no call for it)."""
    from kafka.errors import GroupIdNotFoundError
    group = topic + "-od"
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(topic, 0, 100)], asynchronous=False)
    consumer.close()
    kadmin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    ktp = KTopicPartition(topic, 0)
    from confluent_kafka import ConsumerGroupTopicPartitions

    def committed():
        asked = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])
        return admin.list_consumer_group_offsets([asked])[group].result(timeout=30).topic_partitions[0].offset
    check(committed() == 100, "the offset to delete was committed")
    result = kadmin.delete_group_offsets(group, [ktp])
    check(result[ktp].errno == 0, f"delete_group_offsets: {result}")
    check(committed() < 0, f"the deleted offset is gone: {committed()}")
    try:
        kadmin.delete_group_offsets(unique("nogroup"), [ktp])
        check(False, "OffsetDelete of a missing group must fail")
    except GroupIdNotFoundError:
        pass
    kadmin.close()
    ok("kafka-python delete_group_offsets (OffsetDelete); GROUP_ID_NOT_FOUND for a missing group")


def delete_records(admin, topic):
    tp = TopicPartition(topic, 0, 40)
    deleted = admin.delete_records([tp])[tp].result(timeout=30)
    check(deleted.low_watermark == 40, f"delete_records low watermark: {deleted.low_watermark}")
    check(list_offset(admin, topic, OffsetSpec.earliest()).offset == 40, "earliest after delete_records")
    r = list_offset(admin, topic, OffsetSpec.for_timestamp(BASE_MS))
    check(r.offset == 40, f"by timestamp skips deleted records: {r.offset}")
    r = list_offset(admin, topic, OffsetSpec.max_timestamp())
    check((r.offset, r.timestamp) == (99, BASE_MS + 990), f"max timestamp after deleting record 37: {r.offset} @ {r.timestamp}")

    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": topic + "-g", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 10)])
    first = None
    for _ in range(100):
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            first = message.offset()
            break
    consumer.close()
    check(first == 40, f"a read below the log start reset to it (auto.offset.reset=earliest): {first}")

    past = TopicPartition(topic, 0, 1000)
    try:
        admin.delete_records([past])[past].result(timeout=30)
        check(False, "delete_records past the high watermark must fail")
    except KafkaException as error:
        check(error.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, f"past the high watermark: {error}")
    unknown = TopicPartition(topic, 5, 1)
    try:
        admin.delete_records([unknown])[unknown].result(timeout=30)
        check(False, "delete_records on a missing partition must fail")
    except KafkaException as error:
        check(error.args[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION, KafkaError._NOENT), f"missing partition: {error}")
    ok("AdminClient delete_records: low watermark, earliest, lookups and reads move; errors per partition")

    kadmin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    result = kadmin.delete_records({KTopicPartition(topic, 0): -1})
    low = list(result.values())[0]
    low = low.get("low_watermark", low) if isinstance(low, dict) else low
    check(low == 100, f"kafka-python delete_records to the high watermark: {result}")
    kadmin.close()
    check(list_offset(admin, topic, OffsetSpec.earliest()).offset == 100, "earliest is the end after deleting everything")
    check(list_offset(admin, topic, OffsetSpec.max_timestamp()).offset == -1, "no max timestamp in an emptied log")
    ok("kafka-python delete_records (-1 = high watermark)")


if __name__ == "__main__":
    main()
