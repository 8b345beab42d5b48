# etcd: the API server's store, on the slot's loopback address.
# shellcheck shell=bash

etcd_start() {
  mkdir -p "$state/etcd"
  start etcd "$ETCD_BIN/etcd" \
    --name testbed --data-dir "$state/etcd" \
    --listen-client-urls "http://$TB_LOOP:2379" \
    --advertise-client-urls "http://$TB_LOOP:2379" \
    --listen-peer-urls "http://$TB_LOOP:2380" \
    --initial-advertise-peer-urls "http://$TB_LOOP:2380" \
    --initial-cluster "testbed=http://$TB_LOOP:2380" \
    --listen-metrics-urls "http://$TB_LOOP:2381" \
    --unsafe-no-fsync=true --log-level warn
  wait_for etcd 60 curl -fsS "http://$TB_LOOP:2379/health"
}
