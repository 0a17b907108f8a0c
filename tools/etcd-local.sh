#!/usr/bin/env bash
# Starts a local etcd cluster for Spool: 3 members (Debian's etcd 3.4) on 127.0.0.1, member i with
# client port i*10000+2379 and peer port i*10000+2380, data dirs under one folder; waits until every
# member is healthy, prints the --etcd endpoint list, and stops them all on Ctrl-C.
#
#   tools/etcd-local.sh [--dir DIR] [--members N] [--fresh]
#     --dir DIR    folder for the members' data and logs (default .etcd-local); restarting with the
#                  same folder brings the same cluster back
#     --members N  1, 3 or 5 (default 3)
#     --fresh      delete DIR first
#
# Sourcing it (`source tools/etcd-local.sh`) only defines the functions, for tools/cluster.sh:
#   etcd_local_start DIR N   # starts, waits healthy, sets ETCD_LOCAL_ENDPOINTS and ETCD_LOCAL_PIDS
#   etcd_local_stop          # kills them (SIGTERM, then SIGKILL after 5 s) and waits
set -euo pipefail

etcd_local_endpoints() {
  local n=$1 list="" i
  for ((i = 0; i < n; i++)); do list+="${list:+,}http://127.0.0.1:$((i * 10000 + 2379))"; done
  echo "$list"
}

etcd_local_start() {
  local dir=$1 n=${2:-3} i cluster="" token
  command -v etcd >/dev/null || "$(dirname "${BASH_SOURCE[0]}")/install-deps.sh"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for ((i = 0; i < n; i++)); do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((i * 10000 + 2380))"; done
  token="spool-local-$(echo "$dir" | cksum | cut -d' ' -f1)"
  ETCD_LOCAL_PIDS=()
  for ((i = 0; i < n; i++)); do
    local client="http://127.0.0.1:$((i * 10000 + 2379))" peer="http://127.0.0.1:$((i * 10000 + 2380))"
    etcd --name "m$i" --data-dir "$dir/m$i" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$token" \
      --heartbeat-interval 100 --election-timeout 1000 >>"$dir/m$i.log" 2>&1 &
    ETCD_LOCAL_PIDS+=($!)
  done
  ETCD_LOCAL_ENDPOINTS=$(etcd_local_endpoints "$n")
  local deadline=$((SECONDS + 30))
  until ETCDCTL_API=3 etcdctl --endpoints "$ETCD_LOCAL_ENDPOINTS" --dial-timeout 1s --command-timeout 1s \
      endpoint health >/dev/null 2>&1; do
    for pid in "${ETCD_LOCAL_PIDS[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "an etcd member exited; see $dir/m*.log" >&2
        etcd_local_stop
        return 1
      fi
    done
    if ((SECONDS > deadline)); then
      echo "etcd not healthy within 30 s; see $dir/m*.log" >&2
      etcd_local_stop
      return 1
    fi
    sleep 0.2
  done
}

etcd_local_stop() {
  local pid deadline=$((SECONDS + 5))
  for pid in "${ETCD_LOCAL_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "${ETCD_LOCAL_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  ETCD_LOCAL_PIDS=()
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  dir=.etcd-local members=3 fresh=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) dir=$2; shift 2 ;;
      --members) members=$2; shift 2 ;;
      --fresh) fresh=1; shift ;;
      -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
      *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
  done
  [ "$fresh" = 1 ] && rm -rf "$dir"
  trap 'etcd_local_stop; exit 0' INT TERM
  trap etcd_local_stop EXIT
  etcd_local_start "$dir" "$members"
  echo "etcd: $members members healthy; data in $dir"
  echo "  --etcd $ETCD_LOCAL_ENDPOINTS"
  echo "Ctrl-C stops them."
  wait
fi
