# The kubelet: one node, `testbed-node`, in the node's network namespace,
# with its own cgroup (cgroupfs driver: this machine has no systemd) and its
# own root directory under <state>/kubelet.
# shellcheck shell=bash

kubelet_start() {
  local dir="$state/kubelet" pki="$state/pki"
  mkdir -p "$dir/root" "$dir/pod-logs"
  # The node's identity (the Node authorizer and NodeRestriction admit it to
  # its own objects only) and its serving certificate, for the API server's
  # logs and exec.
  cert kubelet "/CN=system:node:$TB_NODE_NAME/O=system:nodes" "extendedKeyUsage=clientAuth"
  cert kubelet-serving "/CN=$TB_NODE_NAME" "subjectAltName=IP:$TB_NODE_IP,DNS:$TB_NODE_NAME
extendedKeyUsage=serverAuth"
  kubeconfig "$dir/kubeconfig" kubelet
  # The node's cgroup, in every v1 hierarchy (cpuset needs its cpus and mems).
  local h
  for h in /sys/fs/cgroup/*/; do
    [[ "$h" == */unified/ ]] && continue
    mkdir -p "$h$TB_CGROUP"
    if [[ -f "$h/cpuset.cpus" ]]; then
      cat "$h/cpuset.cpus" >"$h$TB_CGROUP/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$TB_CGROUP/cpuset.mems"
    fi
  done
  cat >"$dir/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine uses cgroup v1; kubelet 1.35+ refuses it unless told not to.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$TB_CGROUP
enforceNodeAllocatable: []
failSwapOn: false
containerRuntimeEndpoint: unix://$TB_RUN/containerd.sock
address: $TB_NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [$TB_DNS_IP]
# Pods resolve through CoreDNS only; the host's resolver is not theirs.
resolvConf: ""
podLogsDir: $dir/pod-logs
# A shared CI disk must not evict the tests' pods.
evictionHard: {"nodefs.available": "1%", "imagefs.available": "1%", "memory.available": "100Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
# Status reaches the API server quickly (the tests wait on it).
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
fileCheckFrequency: 10s
YAML
  start_on_node kubelet "$K8S_BIN/kubelet" \
    --config "$dir/config.yaml" \
    --kubeconfig "$dir/kubeconfig" \
    --root-dir "$dir/root" \
    --cert-dir "$pki/kubelet-certs" \
    --hostname-override "$TB_NODE_NAME" \
    --node-ip "$TB_NODE_IP" \
    --node-labels "publicdata.io/testbed=true"
  wait_for kubelet 120 "$KUBECTL" wait --for condition=Ready --timeout 2s "node/$TB_NODE_NAME"
}

# After the kubelet and containerd are stopped: kill what is left in the
# node's cgroup, remove the cgroups, unmount what the kubelet and containerd
# mounted, drop the kubelet's log links.
kubelet_cleanup() {
  local h d
  kubelet_kill_containers
  unmount_under "$state/" "$TB_RUN/"
  for h in /sys/fs/cgroup/*/; do
    [[ -d "$h$TB_CGROUP" ]] || continue
    # Depth first: a cgroup is removed once it has no children and no tasks.
    for _ in $(seq 1 50); do
      while IFS= read -r d; do rmdir "$d" 2>/dev/null || true; done \
        < <(find "$h$TB_CGROUP" -depth -type d 2>/dev/null)
      [[ -d "$h$TB_CGROUP" ]] || break
      sleep 0.1
    done
    [[ -d "$h$TB_CGROUP" ]] && log "warning: could not remove cgroup $h$TB_CGROUP"
  done
  for d in /var/log/containers/*.log; do
    [[ -L "$d" && "$(readlink "$d")" == "$state/"* ]] && rm -f "$d"
  done
  return 0
}

# Every process left in the node's cgroup (the pods' containers): killed.
kubelet_kill_containers() {
  local h pid
  for h in /sys/fs/cgroup/*/; do
    [[ -d "$h$TB_CGROUP" ]] || continue
    for pid in $(find "$h$TB_CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
}

# unmount_under PREFIX...: every mount below the prefixes, deepest first.
unmount_under() {
  local prefix m
  for prefix in "$@"; do
    while IFS= read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(awk '{print $5}' /proc/self/mountinfo | grep -F -- "$prefix" | awk -v p="$prefix" 'index($0, p) == 1' | sort -r)
  done
}
