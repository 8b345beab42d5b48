# The node's network: a network namespace joined to the host by one veth pair.
#
# The node's processes (containerd, kubelet, kube-proxy, kube-router) and so
# every pod live in the namespace publicdata-tbN. Their iptables chains,
# ipsets, the CNI bridge and the pods' interfaces are all inside it, so `down`
# removes every one of them by deleting the namespace, and two test beds never
# see each other's rules. The namespace has no default route and the host
# does not forward: a pod reaches the node, other pods, and the host end of
# the link (the API server, OpenBao, the test bed's "outside" server), and
# nothing beyond this machine.
# shellcheck shell=bash

network_start() {
  local ns="$TB_NETNS" host="$TB_VETH_HOST"
  ip netns add "$ns"
  ip link add "$host" type veth peer name eth0 netns "$ns"
  ip addr add "$TB_HOST_IP/24" dev "$host"
  ip addr add "$TB_OUTSIDE_IP/32" dev "$host"
  ip link set "$host" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$TB_NODE_IP/24" dev eth0
  ip -n "$ns" link set eth0 up
  # The outside server's address sits on the host end of the link.
  ip -n "$ns" route add "$TB_OUTSIDE_IP/32" via "$TB_HOST_IP"
  # Replies from the host to pods go back over the link.
  ip route add "$TB_POD_CIDR" via "$TB_NODE_IP" dev "$host"
  # Inside the node: route between pods and the link, and let bridged pod
  # traffic pass iptables (kube-proxy's Service rules, kube-router's policies).
  nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1 \
    net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1 \
    net.ipv4.conf.all.route_localnet=0
  log "network: namespace $ns, host $TB_HOST_IP, node $TB_NODE_IP, pods $TB_POD_CIDR"
}

# Run a command in the node's network namespace.
on_node() { nsenter --net="/run/netns/$TB_NETNS" -- "$@"; }

network_cleanup() {
  # Deleting the namespace deletes the veth pair (and with it the host route),
  # the bridge, the pods' interfaces, and every iptables rule and ipset made
  # inside it.
  if [[ -e "/run/netns/$TB_NETNS" ]]; then
    ip netns delete "$TB_NETNS" 2>/dev/null || true
  fi
  ip link delete "$TB_VETH_HOST" 2>/dev/null || true
}
