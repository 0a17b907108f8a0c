"""A benchmark, not a check: one kafka-python group consumer that consumes one record and
commits it synchronously (consumer.commit()) before taking the next, for a bounded count
and time. Prints one JSON line: commits, seconds, commits/s, and the time per record split
into the consume step (poll of one buffered record, or a fetch when the buffer is empty)
and the commit() call (client work + round trip + broker), with commit() percentiles.
Checks at the end that the group's committed offset is the last record's offset + 1.

Usage: commit_bench.py TOPIC GROUP RECORDS [SECONDS]   (SPOOL_KAFKA = the broker)
"""
import json
import os
import sys
import time

from kafka import KafkaConsumer, TopicPartition

from common import BOOTSTRAP, check, fail


# COMMIT_BENCH_ITERATE=1: `for record in consumer` (next()) instead of poll(max_records=1).
ITERATE = os.environ.get("COMMIT_BENCH_ITERATE") == "1"


def main():
    topic, group, records = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    consumer = KafkaConsumer(
        topic, bootstrap_servers=BOOTSTRAP, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=False, max_poll_records=500, fetch_max_wait_ms=100, consumer_timeout_ms=1000)
    # Join the group and take the first record before the clock starts.
    deadline = time.monotonic() + 30
    first = {}
    while not first and time.monotonic() < deadline:
        first = consumer.poll(timeout_ms=500, max_records=1)
    if not first:
        fail("no record within 30 s of joining")
    consumer.commit()
    commits = 1
    last_offset = next(iter(first.values()))[0].offset
    poll_s = commit_s = 0.0
    commit_times = []
    start = time.perf_counter()
    stop_at = time.monotonic() + seconds
    while commits < records and time.monotonic() < stop_at:
        t0 = time.perf_counter()
        if ITERATE:
            r = next(consumer, None)
            batch = {None: [r]} if r is not None else {}
        else:
            batch = consumer.poll(timeout_ms=1000, max_records=1)
        t1 = time.perf_counter()
        poll_s += t1 - t0
        for recs in batch.values():
            for r in recs:
                last_offset = r.offset
                c0 = time.perf_counter()
                consumer.commit()
                c1 = time.perf_counter()
                commit_s += c1 - c0
                commit_times.append(c1 - c0)
                commits += 1
    elapsed = time.perf_counter() - start
    committed = consumer.committed(TopicPartition(topic, 0))
    consumer.close(autocommit=False)
    check(committed == last_offset + 1, f"committed offset {committed}, expected {last_offset + 1}")
    measured = commits - 1
    commit_times.sort()

    def pct(p):
        return commit_times[min(len(commit_times) - 1, int(p * len(commit_times)))] * 1e6 if commit_times else 0.0

    print(json.dumps({
        "client": "kafka-python", "consume": "next()" if ITERATE else "poll(max_records=1)", "commits": measured, "seconds": round(elapsed, 3),
        "commits_per_sec": round(measured / elapsed, 1) if elapsed > 0 else 0.0,
        "poll_us_mean": round(poll_s / max(1, measured) * 1e6, 1),
        "commit_us_mean": round(commit_s / max(1, measured) * 1e6, 1),
        "commit_us_p50": round(pct(0.50), 1), "commit_us_p99": round(pct(0.99), 1),
        "committed": committed}), flush=True)


if __name__ == "__main__":
    main()
