# The "outside world": a plain HTTP server the test bed runs on its own
# address 10.213.N.9, which stands for anything beyond the platform. Tenant
# pods must not reach it; a pod without policies can, which proves the path
# exists and a refusal is the policy's doing.
# shellcheck shell=bash

outside_start() {
  mkdir -p "$state/outside"
  echo "outside world" >"$state/outside/index.html"
  start outside python3 -m http.server 8080 --bind "$TB_OUTSIDE_IP" --directory "$state/outside"
  wait_for outside 30 curl -fsS "http://$TB_OUTSIDE_IP:8080/"
  # The outside world's resolver: the cluster DNS's upstream, as a real
  # cluster's is. It answers every name (whoami) and logs each one it is
  # asked, one line per query: where a name sent from a tenant pod would
  # arrive (logs/outside-dns.log).
  cat >"$state/outside/Corefile" <<EOF
.:53 {
    bind $TB_OUTSIDE_IP
    log . "outside-dns {remote} {type} {name}"
    whoami
}
EOF
  start outside-dns "$COREDNS_BIN/coredns" -conf "$state/outside/Corefile"
  wait_for outside-dns 30 busybox nslookup outside-ready.example.net "$TB_OUTSIDE_IP"
}
