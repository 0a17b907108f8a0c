"""Helpers shared by the Kafka-client checks: the broker address, unique names, waits."""
import os
import sys
import time
import uuid

BOOTSTRAP = os.environ.get("SPOOL_KAFKA", "127.0.0.1:9092")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(condition, timeout_s, what, step_s=0.1):
    """Polls `condition` until it is true; fails the check after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step_s)
    fail(f"timed out after {timeout_s}s waiting for {what}")


def check(condition, message):
    if not condition:
        fail(message)


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def ok(message):
    print(f"ok: {message}", flush=True)


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
