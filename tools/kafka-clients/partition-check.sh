#!/usr/bin/env bash
# Network partitions for the cluster (issue 14 item 10), in network namespaces this script makes
# and removes: a bridge namespace, three hosts (etcd member i and broker i on 10.77.0.i) and a
# driver host (10.77.0.10) that runs partition_check.py. Every process of the check runs inside
# these namespaces: nothing here connects to a 10.x address from the root namespace (it would
# route off the machine). Needs root and iproute2 (tools/install-deps.sh).
# Usage: tools/kafka-clients/partition-check.sh path/to/spool path/to/venv/python
set -uo pipefail
spool=$(realpath "${1:?spool binary}")
py=$(realpath -s "${2:?python of the kafka-clients venv}")
cd "$(dirname "$0")"
command -v ip >/dev/null && command -v etcd >/dev/null || ../install-deps.sh >/dev/null
[ "$(id -u)" -eq 0 ] || { echo "partition-check needs root (ip netns)" >&2; exit 1; }
tag="sp$$"
bridge="${tag}b"
hosts="${tag}h1,${tag}h2,${tag}h3"
tmp=$(mktemp -d)
cleanup() {
  for ns in "${tag}h1" "${tag}h2" "${tag}h3" "${tag}c" "$bridge"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -CONT "$pid" 2>/dev/null; kill -9 "$pid" 2>/dev/null; done
  done
  sleep 0.2
  for ns in "${tag}h1" "${tag}h2" "${tag}h3" "${tag}c" "$bridge"; do ip netns del "$ns" 2>/dev/null; done
  [ -n "${PARTITION_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
set -e
ip netns add "$bridge"
ip -n "$bridge" link add br0 type bridge
ip -n "$bridge" link set br0 up
attach() {  # namespace, bridge-side link name, address
  ip netns add "$1"
  ip link add eth0 netns "$1" type veth peer name "$2" netns "$bridge"
  ip -n "$bridge" link set "$2" master br0 up
  ip -n "$1" addr add "$3/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
attach "${tag}h1" vh1 10.77.0.1
attach "${tag}h2" vh2 10.77.0.2
attach "${tag}h3" vh3 10.77.0.3
attach "${tag}c" vc 10.77.0.10
set +e
PARTITION_SPOOL="$spool" PARTITION_TMP="$tmp" PARTITION_HOSTS="$hosts" PARTITION_BRIDGE="$bridge" \
  timeout --signal=KILL 400 ip netns exec "${tag}c" "$py" partition_check.py drive
rc=$?
if [ "$rc" -ne 0 ]; then
  for f in "$tmp"/broker*.log; do echo "== $f (tail)"; tail -25 "$f"; done
fi
exit "$rc"
