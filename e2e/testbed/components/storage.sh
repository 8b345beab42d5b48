# Storage for PersistentVolumeClaims: local-path-provisioner (from its Go
# module), run on the host, with the default StorageClass `testbed-local`.
# Volumes are real directories under <state>/storage on the node; a released
# volume (reclaim policy Delete) is wiped by the provisioner's helper pod, a
# retained one stays until someone deletes it: what offboarding relies on.
# shellcheck shell=bash

storage_start() {
  local dir="$state/storage"
  mkdir -p "$dir/volumes"
  "$KUBECTL" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: local-path-provisioner, namespace: local-path-storage}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: local-path-config, namespace: local-path-storage}
data:
  config.json: |-
    {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$dir/volumes"]}]}
  setup: |-
    #!/bin/sh
    set -eu
    mkdir -m 0777 -p "\$VOL_DIR"
  teardown: |-
    #!/bin/sh
    set -eu
    rm -rf "\$VOL_DIR"
  helperPod.yaml: |-
    apiVersion: v1
    kind: Pod
    metadata: {name: helper-pod}
    spec:
      containers:
      - name: helper-pod
        image: $PROBE_IMAGE
        imagePullPolicy: Never
        securityContext: {runAsUser: 0}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: testbed-local
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
YAML
  cert local-path-provisioner "/CN=testbed:local-path-provisioner" "extendedKeyUsage=clientAuth"
  kubeconfig "$dir/kubeconfig" local-path-provisioner
  "$KUBECTL" apply -f - >/dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "testbed:local-path-provisioner"}
rules:
- apiGroups: [""]
  resources: [nodes, persistentvolumeclaims, configmaps, pods, pods/log]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [persistentvolumes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [create, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "testbed:local-path-provisioner"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "testbed:local-path-provisioner"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "testbed:local-path-provisioner"}]
YAML
  start local-path-provisioner "$LOCAL_PATH_BIN/local-path-provisioner" start \
    --kubeconfig "$dir/kubeconfig" \
    --namespace local-path-storage \
    --service-account-name local-path-provisioner \
    --helper-image "$PROBE_IMAGE"
  wait_for local-path-provisioner 30 grep -q "Started provisioner controller" "$state/logs/local-path-provisioner.log"
}
