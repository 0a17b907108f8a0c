"""Security with the Python clients (run by security-check.sh, which starts the brokers):
confluent-kafka over SASL_SSL with SCRAM-SHA-512; kafka-python over SASL_SSL with
SCRAM-SHA-256 and PLAIN; on a raw socket, a wrong SCRAM proof (SASL_AUTHENTICATION_FAILED,
58, with a message, then close) and a request before authentication (ILLEGAL_SASL_STATE,
34, then close); mutual TLS required refusing a client without a certificate; a user made
with AlterUserScramCredentials (confluent-kafka AdminClient) logging in, and
DescribeUserScramCredentials listing it; a produce quota on one principal (User:carol)
throttling her and not another (User:alice)."""
import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct

from common import check, ok, unique
from kafka_raw import authenticate, connect, request, response, scram_login, string

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer

CERTS = os.environ["CERTS"]
CA = f"{CERTS}/ca.pem"
SASL_SSL = os.environ["SASL_SSL_ADDR"]
SASL_PLAINTEXT = os.environ["SASL_PLAINTEXT_ADDR"]
MTLS = os.environ["MTLS_ADDR"]


def confluent_conf(mechanism, user, password):
    return {"bootstrap.servers": SASL_SSL, "security.protocol": "SASL_SSL", "ssl.ca.location": CA,
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}


def confluent_round_trip(mechanism, user, password):
    topic = unique("sec-ck")
    producer = Producer(confluent_conf(mechanism, user, password))
    for i in range(50):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i)
    check(producer.flush(30) == 0, "confluent-kafka: records left unsent")
    consumer = Consumer({**confluent_conf(mechanism, user, password), "group.id": unique("g"),
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = []
    for _ in range(60):
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            got.append(message.value())
        if len(got) == 50:
            break
    consumer.close()
    check(got == [b"v%d" % i for i in range(50)], f"confluent-kafka {mechanism} read {len(got)} records")


def kafka_python_round_trip(mechanism, user, password):
    topic = unique("sec-kp")
    options = dict(bootstrap_servers=SASL_SSL, security_protocol="SASL_SSL", ssl_cafile=CA,
                   sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password)
    producer = KafkaProducer(**options)
    for i in range(20):
        producer.send(topic, value=b"p%d" % i)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=10000, **options)
    got = [m.value for m in consumer]
    consumer.close()
    check(got == [b"p%d" % i for i in range(20)], f"kafka-python {mechanism} read {len(got)} records")


def raw_wrong_proof():
    s = connect(SASL_PLAINTEXT)
    request(s, 17, 1, 1, string("SCRAM-SHA-256"))
    body = response(s)
    check(struct.unpack(">ih", body[:6])[1] == 0, "SaslHandshake SCRAM-SHA-256 refused")
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=alice,r={nonce}"
    error, _, server_first = authenticate(s, 2, b"n,," + first_bare.encode())
    check(error == 0, f"client-first answered {error}")
    fields = dict(item.split("=", 1) for item in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac("sha256", b"not-alice-secret", base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first.decode()},{without_proof}".encode()
    signature = hmac.new(hashlib.sha256(client_key).digest(), auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    error, message, _ = authenticate(s, 3, f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    check(error == 58, f"a wrong proof answered {error}, not SASL_AUTHENTICATION_FAILED (58)")
    check(message and "Authentication failed" in message, f"no failure message: {message!r}")
    check(response(s) is None, "the connection stayed open after a failed authentication")
    ok(f"wrong password: 58, {message!r}, closed")


def raw_request_before_auth():
    s = connect(SASL_PLAINTEXT)
    request(s, 3, 1, 7, struct.pack(">i", -1))  # Metadata v1, all topics
    body = response(s)
    check(body is not None and struct.unpack(">ih", body[:6]) == (7, 34), f"Metadata before auth answered {body!r}")
    check(response(s) is None, "the connection stayed open after ILLEGAL_SASL_STATE")
    ok("request before authentication: 34, closed")


def mtls_without_certificate():
    context = ssl.create_default_context(cafile=CA)
    host, port = MTLS.rsplit(":", 1)
    refused = False
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                # TLS 1.3: the server's refusal arrives after the client's handshake finished.
                request(s, 18, 0, 1, b"")
                refused = response(s) is None
    except (ssl.SSLError, ConnectionError, OSError):
        refused = True
    check(refused, "a client without a certificate was served on an mTLS-required listener")
    ok("mTLS required: a client without a certificate refused")


def alter_then_login():
    admin = AdminClient(confluent_conf("SCRAM-SHA-512", "alice", "alice-secret"))
    futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"carol-secret")])
    for future in futures.values():
        future.result(30)
    described = admin.describe_user_scram_credentials(["carol"])
    info = described["carol"].result(30)
    check([c.mechanism for c in info.scram_credential_infos] == [ScramMechanism.SCRAM_SHA_256],
          f"DescribeUserScramCredentials: {info}")
    kafka_python_round_trip("SCRAM-SHA-256", "carol", "carol-secret")
    ok("AlterUserScramCredentials made carol, who logs in with SCRAM-SHA-256")


def principal_quotas():
    """A produce quota on User:carol (AlterClientQuotas v0 sent as alice over SASL): carol's
    producer is throttled (throttle_time_ms reported), alice's, with the same records, is not."""
    s = connect(SASL_PLAINTEXT)
    error, _ = scram_login(s, "alice", "alice-secret", "SCRAM-SHA-256")
    check(error == 0, f"alice's SCRAM login answered {error}")
    entity = struct.pack(">i", 1) + string("user") + string("carol")
    ops = struct.pack(">i", 1) + string("producer_byte_rate") + struct.pack(">d?", 50000.0, False)
    request(s, 49, 0, 10, struct.pack(">i", 1) + entity + ops + struct.pack(">?", False))
    body = response(s)
    check(body is not None and struct.unpack(">h", body[8:10])[0] == 0, "AlterClientQuotas for User:carol refused")
    s.close()
    payload = os.urandom(1000)

    def throttled_ms(user, password):
        throttles = []
        conf = {**confluent_conf("SCRAM-SHA-512" if user == "alice" else "SCRAM-SHA-256", user, password),
                "throttle_cb": lambda event: throttles.append(event.throttle_time * 1000), "linger.ms": 5}
        producer = Producer(conf)
        topic = unique("quota-" + user)
        for _ in range(1500):
            producer.produce(topic, value=payload)
            producer.poll(0)
        check(producer.flush(60) == 0, f"{user}'s records left unsent")
        producer.poll(0.5)
        return sum(throttles)
    carol = throttled_ms("carol", "carol-secret")
    alice = throttled_ms("alice", "alice-secret")
    check(carol > 0, "User:carol over her 50,000 B/s produce quota was never throttled")
    check(alice == 0, f"User:alice, without a quota, was throttled {alice:.0f} ms")
    ok(f"per-principal quota: User:carol throttled {carol:.0f} ms in all for 1.5 MB, User:alice not at all")


confluent_round_trip("SCRAM-SHA-512", "alice", "alice-secret")
ok("confluent-kafka SASL_SSL SCRAM-SHA-512 produce/consume")
kafka_python_round_trip("SCRAM-SHA-256", "alice", "alice-secret")
ok("kafka-python SASL_SSL SCRAM-SHA-256 produce/consume")
kafka_python_round_trip("PLAIN", "alice", "alice-secret")
ok("kafka-python SASL_SSL PLAIN produce/consume")
raw_wrong_proof()
raw_request_before_auth()
mtls_without_certificate()
alter_then_login()
principal_quotas()
