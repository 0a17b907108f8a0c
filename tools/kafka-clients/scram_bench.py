"""SCRAM authentications per second against a SASL_PLAINTEXT listener (tools/bench-security.sh):
a new connection per authentication, SaslHandshake and the two SCRAM round trips, the
client's salted password computed once (so the time is the broker's and the round trips').
Usage: scram_bench.py HOST:PORT USER PASSWORD MECHANISM COUNT"""
import sys
import time

from common import check
from kafka_raw import connect, scram_login

address, user, password, mechanism, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
salted = None
started = time.monotonic()
for i in range(count):
    s = connect(address)
    error, salted = scram_login(s, user, password, mechanism, salted)
    check(error == 0, f"authentication {i} answered {error}")
    s.close()
elapsed = time.monotonic() - started
print(f"{mechanism}: {count} authentications in {elapsed:.2f} s: {count / elapsed:,.0f}/s ({elapsed / count * 1000:.2f} ms each)")
