# kube-controller-manager, with the controllers the tests rely on.
# shellcheck shell=bash

kube_controller_manager_start() {
  local pki="$state/pki"
  # Controllers, and why each is on (see docs/testbed.md).
  local controllers=(
    namespace-controller                    # finishes namespace deletion (offboarding)
    garbage-collector-controller            # ownerReference cascades, foreground/orphan deletion
    serviceaccount-controller               # the `default` ServiceAccount of each namespace
    serviceaccount-token-controller         # legacy token Secrets when asked for
    root-ca-certificate-publisher-controller # kube-root-ca.crt in each namespace
    clusterrole-aggregation-controller      # fills the aggregated admin/edit/view ClusterRoles
    resourcequota-controller                # quota status; without it quota admission refuses pods
    deployment-controller                   # Deployment -> ReplicaSet
    replicaset-controller                   # ReplicaSet -> Pods
    statefulset-controller                  # StatefulSet -> Pods
    daemonset-controller                    # DaemonSet -> Pods
    job-controller                          # Job -> Pods, suspension
    cronjob-controller                      # CronJob -> Jobs, suspension
    ttl-after-finished-controller           # cleans finished Jobs
    endpointslice-controller                # Service -> EndpointSlices (kube-proxy, CoreDNS)
    endpointslice-mirroring-controller      # Endpoints of selector-less Services -> EndpointSlices
    node-lifecycle-controller               # lifts the node's not-ready taint once it is Ready
    node-ipam-controller                    # the node's podCIDR (kube-router reads it)
    persistentvolume-binder-controller      # PVC <-> PV binding, reclaim policy
    persistentvolume-protection-controller  # PV finalizer while bound
    persistentvolumeclaim-protection-controller # PVC finalizer while in use
    pod-garbage-collector-controller        # removes orphaned and terminated pods
    disruption-controller                   # PodDisruptionBudgets
  )
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$state/kubeconfig" \
    --authentication-kubeconfig "$state/kubeconfig" \
    --authorization-kubeconfig "$state/kubeconfig" \
    --bind-address "$TB_LOOP" --secure-port 10257 --cert-dir "$pki/kcm" \
    --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true \
    --allocate-node-cidrs=true --cluster-cidr "$TB_POD_CIDR" --node-cidr-mask-size 24 \
    --service-cluster-ip-range "$TB_SERVICE_CIDR" \
    --leader-elect=false \
    --controllers "$(IFS=,; echo "${controllers[*]}")"
  wait_for kube-controller-manager 60 curl -fsSk "https://$TB_LOOP:10257/healthz"
  # The service-account controller has run once `default` has its ServiceAccount.
  wait_for kube-controller-manager 60 "$KUBECTL" get serviceaccount default -n default
}
