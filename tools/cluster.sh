#!/usr/bin/env bash
# Starts a local Spool cluster on 127.0.0.1: 3 etcd members (tools/etcd-local.sh) and 3 brokers in
# cluster mode, data under one folder; prints how to reach them; stops everything on Ctrl-C/SIGTERM.
# Partitions replicate over the three (RF 3 with `spool topic create --replication-factor 3` or a Kafka client).
#
#   tools/cluster.sh [--dir DIR] [--fresh] [--cluster-id C] [--release]
#     --dir DIR      folder for etcd's and the brokers' data and logs (default .spool-cluster)
#     --fresh        delete DIR first
#     --cluster-id C default local
#     --release      build and run the release binary (default: debug)
#
# Broker i (1..3): native 127.0.0.1:929i, Kafka 127.0.0.1:909i, admin HTTP 127.0.0.1:964i.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.spool-cluster fresh=0 cluster_id=local config=debug
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --cluster-id) cluster_id=$2; shift 2 ;;
    --release) config=release; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v etcd >/dev/null || tools/install-deps.sh
# shellcheck source=etcd-local.sh
source tools/etcd-local.sh
[ "$fresh" = 1 ] && rm -rf "$dir"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
swift build -c "$config" --product spool
spool=$(swift build -c "$config" --show-bin-path)/spool

BROKER_PIDS=()
stop_all() {
  trap - INT TERM EXIT
  local pid
  for pid in "${BROKER_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "${BROKER_PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  etcd_local_stop
  echo "cluster stopped"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

etcd_local_start "$dir/etcd" 3
for i in 1 2 3; do
  "$spool" broker --data-dir "$dir/broker$i" --listen "127.0.0.1:929$i" --kafka-listen "127.0.0.1:909$i" \
    --http-listen "127.0.0.1:964$i" --node-id "$i" --etcd "$ETCD_LOCAL_ENDPOINTS" --cluster-id "$cluster_id" \
    >>"$dir/broker$i.log" 2>&1 &
  BROKER_PIDS+=($!)
done
deadline=$((SECONDS + 60))
for i in 1 2 3; do
  until grep -q "registered in cluster" "$dir/broker$i.log" 2>/dev/null; do
    if ((SECONDS > deadline)) || ! kill -0 "${BROKER_PIDS[$((i - 1))]}" 2>/dev/null; then
      echo "broker $i did not join; see $dir/broker$i.log" >&2
      exit 1
    fi
    sleep 0.2
  done
done
"$spool" cluster status --etcd "$ETCD_LOCAL_ENDPOINTS" --cluster-id "$cluster_id"
cat <<INFO

etcd:     $ETCD_LOCAL_ENDPOINTS
brokers:  native 127.0.0.1:9291,127.0.0.1:9292,127.0.0.1:9293   Kafka 127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093
admin:    http://127.0.0.1:9641/  http://127.0.0.1:9642/  http://127.0.0.1:9643/
status:   $spool cluster status --etcd $ETCD_LOCAL_ENDPOINTS --cluster-id $cluster_id
logs:     $dir/broker{1,2,3}.log, $dir/etcd/m*.log
Ctrl-C stops everything.
INFO
wait -n "${BROKER_PIDS[@]}" || true
echo "a broker exited; stopping the cluster" >&2
