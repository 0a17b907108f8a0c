"""A benchmark, not a check: the floor under commit_bench.py. OffsetCommit v2 requests
written by hand on one blocking socket (TCP_NODELAY), each answered before the next is
sent, from Python but without kafka-python's client machinery (its IO thread, futures,
selector). Same broker, same Kafka listener, same coordinator path (a group without
members: generation -1). Prints one JSON line like commit_bench.py.

Usage: raw_commit_bench.py TOPIC GROUP COMMITS   (SPOOL_KAFKA = the broker)
"""
import json
import socket
import struct
import sys
import time

from common import BOOTSTRAP, fail


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def main():
    topic, group, commits = sys.argv[1], sys.argv[2], int(sys.argv[3])
    host, port = BOOTSTRAP.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def receive(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                fail("the broker closed the connection")
            buf += chunk
        return buf

    times = []
    start = time.perf_counter()
    for i in range(commits):
        # v2: group, generation, member, retention, [topic, [partition, offset, metadata]].
        body = (string(group) + struct.pack(">i", -1) + string("") + struct.pack(">q", -1)
                + struct.pack(">i", 1) + string(topic) + struct.pack(">i", 1) + struct.pack(">iq", 0, i + 1) + string(""))
        request = struct.pack(">hhi", 8, 2, i) + string("raw-commit-bench") + body
        t0 = time.perf_counter()
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", receive(4))[0]
        response = receive(size)
        times.append(time.perf_counter() - t0)
        if struct.unpack(">i", response[:4])[0] != i or response[-2:] != b"\0\0":
            fail(f"commit {i}: unexpected answer {response.hex()}")
    elapsed = time.perf_counter() - start
    times.sort()
    print(json.dumps({
        "client": "python-raw-socket", "commits": commits, "seconds": round(elapsed, 3),
        "commits_per_sec": round(commits / elapsed, 1), "commit_us_mean": round(sum(times) / commits * 1e6, 1),
        "commit_us_p50": round(times[commits // 2] * 1e6, 1), "commit_us_p99": round(times[int(commits * 0.99)] * 1e6, 1)}))


if __name__ == "__main__":
    main()
