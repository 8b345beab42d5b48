# kube-proxy (iptables mode) in the node's network namespace: Services work
# as on any cluster (the `kubernetes` Service, CoreDNS, OpenBao's Service).
# shellcheck shell=bash

kube_proxy_start() {
  local dir="$state/kube-proxy"
  mkdir -p "$dir"
  cert kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
  kubeconfig "$dir/kubeconfig" kube-proxy
  # system:node-proxier is the built-in role for kube-proxy.
  "$KUBECTL" create clusterrolebinding testbed-kube-proxy \
    --clusterrole system:node-proxier --user system:kube-proxy >/dev/null
  cat >"$dir/config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $dir/kubeconfig}
hostnameOverride: $TB_NODE_NAME
clusterCIDR: $TB_POD_CIDR
bindAddress: $TB_NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# The conntrack table size is the host's, not the node's: leave it alone.
conntrack: {maxPerCore: 0, min: 0}
iptables: {localhostNodePorts: false, syncPeriod: 10s, minSyncPeriod: 0s}
YAML
  start_on_node kube-proxy "$K8S_BIN/kube-proxy" --config "$dir/config.yaml"
  wait_for kube-proxy 60 on_node curl -fsS http://127.0.0.1:10256/healthz
}
