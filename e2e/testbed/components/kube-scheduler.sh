# kube-scheduler: places pods on the node.
# shellcheck shell=bash

kube_scheduler_start() {
  start kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$state/kubeconfig" \
    --authentication-kubeconfig "$state/kubeconfig" \
    --authorization-kubeconfig "$state/kubeconfig" \
    --bind-address "$TB_LOOP" --secure-port 10259 --cert-dir "$state/pki/scheduler" \
    --leader-elect=false
  wait_for kube-scheduler 60 curl -fsSk "https://$TB_LOOP:10259/healthz"
}
