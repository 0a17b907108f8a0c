# Sourced by the test scripts that need one etcd member on loopback (tools/kafka-clients/cluster-check.sh,
# tools/console/cluster-check.sh). start_test_etcd DIR starts it on two free ports, data and log
# in DIR, waits (bounded) until it is healthy and sets etcd_pid and etcd_endpoint; it returns 1,
# with the log's tail on stderr, when it does not come up. The caller stops etcd_pid.
# Short heartbeat and election timeouts: tests kill and stop members.
start_test_etcd() {
  local dir=$1 client peer
  read -r client peer < <(python3 -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')
  etcd --name m0 --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "m0=http://127.0.0.1:$peer" \
    --heartbeat-interval 100 --election-timeout 1000 >"$dir/etcd.log" 2>&1 &
  etcd_pid=$!
  etcd_endpoint="http://127.0.0.1:$client"
  for _ in $(seq 1 100); do curl -sf "$etcd_endpoint/health" 2>/dev/null | grep -q true && return 0; sleep 0.1; done
  echo "etcd did not start:" >&2
  tail -20 "$dir/etcd.log" >&2
  return 1
}
