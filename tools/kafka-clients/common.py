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
