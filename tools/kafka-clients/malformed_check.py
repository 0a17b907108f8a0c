"""Malformed Kafka requests on a raw socket: each gets an error response or a closed
connection, never a crash; the broker keeps answering afterwards."""
import os
import random
import socket
import struct
import sys

from common import BOOTSTRAP, check, ok
from kafka_raw import recv_exactly

HOST, PORT = BOOTSTRAP.rsplit(":", 1)
TIMEOUT_S = 10


def connect():
    s = socket.create_connection((HOST, int(PORT)), timeout=TIMEOUT_S)
    s.settimeout(TIMEOUT_S)
    return s


def header(api_key, version, correlation_id, client_id=b"malformed"):
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id


def frame(body):
    return struct.pack(">i", len(body)) + body


def read_response(s):
    """The next response's bytes after the size, or None if the broker closed the connection."""
    size = recv_exactly(s, 4)
    if size is None:
        return None
    (n,) = struct.unpack(">i", size)
    check(0 <= n <= 1 << 20, f"a sane response size, got {n}")
    return recv_exactly(s, n)


def closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def api_versions_ok():
    s = connect()
    s.sendall(frame(header(18, 0, 7)))
    body = read_response(s)
    s.close()
    check(body is not None and struct.unpack(">ih", body[:6]) == (7, 0), "ApiVersions v0 answered with no error")
    return True


def main():
    seed = int(os.environ.get("SEED", random.randrange(1 << 30)))
    print(f"seed {seed}", flush=True)
    rng = random.Random(seed)

    # Unknown API key: UNSUPPORTED_VERSION (35) for its correlation id, connection kept.
    s = connect()
    s.sendall(frame(header(999, 0, 41)))
    body = read_response(s)
    check(body is not None and struct.unpack(">ih", body[:6]) == (41, 35), f"unknown API key answered with 35, got {body!r}")
    # Unsupported version of a known API (Fetch v13 addresses topics by id).
    s.sendall(frame(header(1, 13, 42) + b"\x00" * 16))
    body = read_response(s)
    check(body is not None and struct.unpack(">ih", body[:6]) == (42, 35), "Fetch v13 answered with 35")
    # ApiVersions at an unknown version: v0 layout with 35 and the supported list.
    s.sendall(frame(header(18, 99, 43)))
    body = read_response(s)
    correlation, error, count = struct.unpack(">ihi", body[:10])
    check((correlation, error) == (43, 35) and count >= 20, f"ApiVersions v99 answered in the v0 layout with the list ({count} APIs)")
    s.close()
    ok("unknown API key and unsupported versions get UNSUPPORTED_VERSION, connection kept")

    # Absurd array length: Metadata v1 claiming 2^31-1 topics in a 4-byte body.
    s = connect()
    s.sendall(frame(header(3, 1, 50) + struct.pack(">i", 0x7FFFFFFF)))
    check(read_response(s) is None, "absurd array length closes the connection")
    s.close()
    # A string longer than the request.
    s = connect()
    s.sendall(frame(header(3, 1, 51) + struct.pack(">ih", 1, 30000) + b"x"))
    check(read_response(s) is None, "overlong string closes the connection")
    s.close()
    ok("absurd array and string lengths close the connection")

    # A 32,000-byte topic name: refused with an error message, which must still fit its prefix.
    s = connect()
    name = b"n" * 32000
    create = struct.pack(">ih", 1, len(name)) + name + struct.pack(">ihii", 1, 1, 0, 0) + struct.pack(">i", 1000)
    s.sendall(frame(header(19, 1, 52) + create + b"\x00"))
    body = read_response(s)
    check(body is not None and struct.unpack(">i", body[:4])[0] == 52, "CreateTopics with a huge name is answered")
    s.close()
    ok("a huge topic name is refused with an answer")

    # Sizes: 2 GiB announced, negative, below a header.
    for size in (0x7FFFFFFF, -5, 3):
        s = connect()
        s.sendall(struct.pack(">i", size) + b"\x00" * 8)
        check(closed(s), f"request size {size} closes the connection")
        s.close()
    # A size larger than what follows, then the client goes away.
    s = connect()
    s.sendall(struct.pack(">i", 100) + header(18, 0, 60))
    s.close()
    # A size smaller than the request: the rest is read as the next request.
    s = connect()
    body = header(3, 1, 61) + struct.pack(">i", 1) + struct.pack(">h", 1) + b"t"
    s.sendall(struct.pack(">i", len(body) - 3) + body)
    check(read_response(s) is None, "a truncated request closes the connection")
    s.close()
    ok("wrong request sizes close the connection")

    # Truncated at every byte: a valid Metadata v9 request cut short inside its size.
    good = header(3, 9, 70) + b"\x00" + b"\x02\x02t\x00\x01\x00\x00\x00"
    for cut in range(len(good)):
        s = connect()
        s.sendall(frame(good[:cut]))
        response = read_response(s)
        check(response is None or struct.unpack(">i", response[:4])[0] == 70, f"cut at {cut}: an answer or a close")
        s.close()
    ok(f"a request truncated at each of its {len(good)} bytes gets a close (or an answer), never a crash")

    # Random bodies behind valid headers of every API and version.
    for _ in range(300):
        s = connect()
        api = rng.choice([0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 32, 33, 37, 42, 44])
        version = rng.randrange(0, 13)
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        s.sendall(frame(header(api, version, 80) + junk))
        try:
            read_response(s)
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
    ok("300 random request bodies answered or closed")

    check(api_versions_ok(), "broker still answers")
    ok("the broker still answers ApiVersions after all of it")


if __name__ == "__main__":
    main()
    sys.exit(0)
