# kube-router in firewall mode only: the node's NetworkPolicy engine.
#
# Why kube-router: it is a maintained implementation that enforces
# NetworkPolicy with iptables and ipset, which this kernel has; the
# nftables-queue engines (kube-network-policies) need NFT_QUEUE, which this
# kernel lacks. It runs with routing and service proxying off: the CNI bridge
# and kube-proxy do those.
# shellcheck shell=bash

kube_router_start() {
  local dir="$state/kube-router"
  mkdir -p "$dir"
  cert kube-router "/CN=testbed:kube-router" "extendedKeyUsage=clientAuth"
  kubeconfig "$dir/kubeconfig" kube-router
  "$KUBECTL" apply -f - >/dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "testbed:kube-router"}
rules:
- apiGroups: [""]
  resources: [namespaces, pods, services, nodes, endpoints]
  verbs: [list, get, watch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [list, get, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, get, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "testbed:kube-router"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "testbed:kube-router"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "testbed:kube-router"}]
YAML
  start_on_node kube-router "$KUBE_ROUTER_BIN/kube-router" \
    --kubeconfig "$dir/kubeconfig" \
    --hostname-override "$TB_NODE_NAME" \
    --run-firewall=true --run-router=false --run-service-proxy=false \
    --enable-ipv4=true --enable-ipv6=false \
    --iptables-sync-period 30s --metrics-port 0 \
    --health-port 20244
  wait_for kube-router 60 on_node curl -fsS http://127.0.0.1:20244/healthz
}
