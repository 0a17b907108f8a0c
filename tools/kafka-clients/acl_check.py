"""ACLs with the Python clients (run by security-check.sh, which starts a broker with the
authorizer on, SASL_PLAINTEXT SCRAM-SHA-512, User:admin a super user, and adds the ACLs:
alice ALLOWed Read/Write/Create/Describe on topics prefixed `team.` and Read on groups
prefixed `team-`, DENYed Read on `team.secret`; bob has no ACL at all).

confluent-kafka and kafka-python: alice produces and consumes a prefixed-allowed topic in an
allowed group; a group she has no ACL for is refused (GROUP_AUTHORIZATION_FAILED, 30); bob
is refused the topic (TOPIC_AUTHORIZATION_FAILED, 29) and CreateTopics
(CLUSTER_AUTHORIZATION_FAILED, 31: he may create no topic at all) while alice may create a
`team.` topic but not another (29); the literal DENY beats the prefixed ALLOW on
team.secret; the super user needs no ACL and sees every topic, alice only hers."""
import os
import time

from common import check, ok, unique

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError as KafkaPythonError
from kafka.errors import TopicAuthorizationFailedError

ADDR = os.environ["ACL_ADDR"]


def conf(user):
    return {"bootstrap.servers": ADDR, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user, "sasl.password": f"{user}-secret"}


def kp_options(user):
    return dict(bootstrap_servers=ADDR, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                sasl_plain_username=user, sasl_plain_password=f"{user}-secret")


def confluent_consume(user, topic, group, want, seconds=30):
    """Records read by a subscribed consumer, and the first error code it reported."""
    consumer = Consumer({**conf(user), "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got, error = [], None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(got) < want and error is None:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() != KafkaError._PARTITION_EOF:
                error = message.error().code()
            continue
        got.append(message.value())
    consumer.close()
    return got, error


def confluent_allowed_and_denied_group():
    topic, group = unique("team.ck"), unique("team-g")
    producer = Producer(conf("alice"))
    for i in range(30):
        producer.produce(topic, value=b"v%d" % i)
    check(producer.flush(30) == 0, "confluent-kafka: alice's records left unsent")
    got, error = confluent_consume("alice", topic, group, 30)
    check(error is None and got == [b"v%d" % i for i in range(30)], f"alice read {len(got)} of 30 (error {error})")
    ok("confluent-kafka: alice produces and consumes team.* in a team-* group")
    _, error = confluent_consume("alice", topic, unique("other-g"), 1, seconds=20)
    check(error == KafkaError.GROUP_AUTHORIZATION_FAILED, f"a group without an ACL: expected 30, got {error}")
    ok("confluent-kafka: a group alice has no ACL for is refused (GROUP_AUTHORIZATION_FAILED)")


def kafka_python_allowed_and_denied_topic():
    topic = unique("team.kp")
    producer = KafkaProducer(**kp_options("alice"))
    for i in range(20):
        producer.send(topic, value=b"p%d" % i).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=unique("team-kp"), auto_offset_reset="earliest",
                             consumer_timeout_ms=15000, **kp_options("alice"))
    got = [m.value for _, m in zip(range(20), consumer)]
    consumer.close()
    check(got == [b"p%d" % i for i in range(20)], f"kafka-python: alice read {len(got)} of 20")
    ok("kafka-python: alice produces and consumes a team.* topic")

    producer = KafkaProducer(max_block_ms=10000, **kp_options("bob"))
    try:
        producer.send(topic, value=b"x").get(timeout=20)
        check(False, "bob produced to a topic he has no ACL for")
    except TopicAuthorizationFailedError:
        pass
    except KafkaPythonError as error:
        check("TopicAuthorizationFailed" in type(error).__name__ or "TOPIC_AUTHORIZATION" in str(error).upper(),
              f"bob's produce: expected TOPIC_AUTHORIZATION_FAILED, got {error!r}")
    finally:
        producer.close(timeout=5)
    ok("kafka-python: bob is refused the topic (TOPIC_AUTHORIZATION_FAILED)")


def kafka_python_deny_over_allow():
    consumer = KafkaConsumer(consumer_timeout_ms=10000, **kp_options("alice"))
    consumer.assign([TopicPartition("team.secret", 0)])
    consumer.seek_to_beginning()
    refused = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not refused:
        try:
            consumer.poll(timeout_ms=500)
        except TopicAuthorizationFailedError:
            refused = True
    consumer.close()
    check(refused, "alice read team.secret: the literal DENY did not beat the prefixed ALLOW")
    ok("kafka-python: DENY Read on team.secret beats the prefixed ALLOW")


def create_topics():
    def create(user, name):
        admin = AdminClient(conf(user))  # kept alive until the result is in
        futures = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)],
                                                        request_timeout=20)
        try:
            futures[name].result(30)
            return None
        except Exception as error:  # confluent_kafka.KafkaException carrying a KafkaError
            return error.args[0].code()
    code = create("bob", unique("bob-topic"))
    check(code == KafkaError.CLUSTER_AUTHORIZATION_FAILED, f"bob's CreateTopics: expected 31, got {code}")
    code = create("alice", unique("team.created"))
    check(code is None, f"alice's CreateTopics of a team. topic: {code}")
    code = create("alice", unique("elsewhere"))
    check(code == KafkaError.TOPIC_AUTHORIZATION_FAILED, f"alice's CreateTopics outside team.: expected 29, got {code}")
    ok("confluent-kafka AdminClient: bob refused CreateTopics (31); alice creates team.* only (29 elsewhere)")


def super_user_sees_everything():
    topic = unique("ops")
    producer = Producer(conf("admin"))
    producer.produce(topic, value=b"admin")
    check(producer.flush(30) == 0, "the super user's record left unsent")
    got, error = confluent_consume("admin", topic, unique("any-group"), 1)
    check(got == [b"admin"] and error is None, f"the super user read {got} (error {error})")
    everything = AdminClient(conf("admin")).list_topics(timeout=20).topics
    hers = AdminClient(conf("alice")).list_topics(timeout=20).topics
    check(topic in everything, "the super user does not see his own topic")
    check(topic not in hers, "alice sees a topic she may not describe")
    check(all(name.startswith("team.") for name in hers), f"alice sees topics outside team.: {sorted(hers)}")
    ok("super user: no ACL needed, sees every topic; Metadata hides them from alice")


confluent_allowed_and_denied_group()
kafka_python_allowed_and_denied_topic()
kafka_python_deny_over_allow()
create_topics()
super_user_sees_everything()
print("acl checks passed")
