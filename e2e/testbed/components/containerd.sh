# containerd 2.x with runc, the node's container runtime, in the node's
# network namespace. Its data is under <state>/containerd, its sockets and
# volatile state under /run/publicdata-testbed/N/run (a unix socket path must
# stay short), the pods' network namespaces under that state dir too
# (netns_mounts_under_state_dir), so nothing lands in the host's /run/netns.
# shellcheck shell=bash

containerd_start() {
  local dir="$state/containerd" run="$TB_RUN/containerd"
  mkdir -p "$dir/root" "$run" "$state/cni/net.d"
  cat >"$dir/config.toml" <<TOML
version = 3
root = "$dir/root"
state = "$run"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "$TB_RUN/containerd.sock"

[ttrpc]
  address = "$TB_RUN/containerd.sock.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    # Built by images.sh; nothing is ever pulled.
    sandbox = "$PAUSE_IMAGE"

[plugins.'io.containerd.cri.v1.runtime']
  # This machine gives even root no CAP_SYS_RESOURCE, so a container may not
  # lower its oom_score_adj below containerd's own (docs/testbed.md).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$CNI_BIN"]
    conf_dir = "$state/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$RUNC"
        # runc's state with the node's, not in /run/containerd/runc.
        Root = "$TB_RUN/runc"
        SystemdCgroup = false

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
TOML
  # The pod network: one bridge in the node's namespace, addresses from the
  # slot's pod range, no masquerading (nothing leaves the machine).
  cat >"$state/cni/net.d/10-testbed.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "testbed",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$state/cni/ipam",
        "ranges": [[{"subnet": "$TB_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  # The shim is found on PATH.
  PATH="$CONTAINERD_BIN:$PATH" start_on_node containerd "$CONTAINERD_BIN/containerd" --config "$dir/config.toml"
  wait_for containerd 60 "$CONTAINERD_BIN/ctr" --address "$TB_RUN/containerd.sock" version
}

# ctr against this node's containerd, in the namespace the CRI uses.
ctr_k8s() { "$CONTAINERD_BIN/ctr" --address "$TB_RUN/containerd.sock" -n k8s.io "$@"; }

# After containerd is stopped: its shims, and every container left in the
# node's cgroup, are killed; every mount under its state is unmounted.
containerd_cleanup() {
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $TB_RUN/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}
