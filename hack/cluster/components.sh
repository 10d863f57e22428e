# shellcheck shell=bash
# Part of hack/local-cluster.sh (sourced; runs nothing): the components, each a host process:
# etcd, kube-apiserver, containerd (our own instance), kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy; and the locally built pause image.

start_etcd() {
  start_daemon etcd "${OOMLAB_ETCD_BIN}/etcd" \
    --name oomlab --data-dir "${OOMLAB_CLUSTER_STATE}/etcd" \
    --listen-client-urls "http://127.0.0.1:${OOMLAB_ETCD_PORT}" \
    --advertise-client-urls "http://127.0.0.1:${OOMLAB_ETCD_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${OOMLAB_ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${OOMLAB_ETCD_PEER_PORT}" \
    --initial-cluster "oomlab=http://127.0.0.1:${OOMLAB_ETCD_PEER_PORT}" \
    --quota-backend-bytes $((2 * 1024 * 1024 * 1024)) --log-level warn
  wait_for "etcd health" 60 curl -fsS "http://127.0.0.1:${OOMLAB_ETCD_PORT}/health"
}

start_apiserver() {
  start_daemon kube-apiserver "${OOMLAB_K8S_BIN}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${OOMLAB_ETCD_PORT}" \
    --bind-address "${OOMLAB_NODE_IP}" --advertise-address "${OOMLAB_NODE_IP}" \
    --secure-port "${OOMLAB_API_PORT}" \
    --tls-cert-file "${PKI}/kube-apiserver.crt" --tls-private-key-file "${PKI}/kube-apiserver.key" \
    --client-ca-file "${PKI}/ca.crt" \
    --kubelet-client-certificate "${PKI}/apiserver-kubelet-client.crt" \
    --kubelet-client-key "${PKI}/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "${PKI}/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-cluster-ip-range "${OOMLAB_SERVICE_CIDR}" \
    --service-account-key-file "${PKI}/sa.pub" \
    --service-account-signing-key-file "${PKI}/sa.key" \
    --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged=true --profiling=false --v=1
  wait_for "the API server to be ready" "${OOMLAB_WAIT_SECONDS}" kubectl_admin get --raw /readyz
}

write_containerd_config() {
  mkdir -p "${OOMLAB_CLUSTER_STATE}/containerd" "${OOMLAB_CONTAINERD_ROOT}" "${OOMLAB_CLUSTER_RUN}/containerd" "${OOMLAB_CLUSTER_RUN}/runc"
  write_if_changed "${OOMLAB_CLUSTER_STATE}/containerd/config.toml" <<EOF
# oomlab's own containerd: separate root, state and socket from any other containerd here.
version = 2
root = "${OOMLAB_CONTAINERD_ROOT}"
state = "${OOMLAB_CLUSTER_RUN}/containerd"

[grpc]
  address = "${CONTAINERD_SOCK}"

[plugins."io.containerd.internal.v1.opt"]
  path = "${OOMLAB_CONTAINERD_ROOT}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${OOMLAB_PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  # Processes here lack CAP_SYS_RESOURCE (not in the bounding set), so the negative
  # oom_score_adj the kubelet asks for (-998 for sandboxes, -997 for Guaranteed pods) fails with
  # EPERM; clamp it to containerd's own score instead. Limit-triggered (memcg) OOM kills are not
  # affected: the kernel then picks a victim inside the container's cgroup.
  restrict_oom_score_adj = true
  # Keep the pods' network namespaces under our state dir, not in the host's /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "${OOMLAB_CLUSTER_RUN}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${CNI_CONF_DIR}"
EOF
}

start_containerd() {
  write_containerd_config
  start_daemon containerd /usr/bin/containerd --config "${OOMLAB_CLUSTER_STATE}/containerd/config.toml"
  wait_for "containerd" 60 ctr --address "${CONTAINERD_SOCK}" version
  ensure_pause_image
}

# Our own sandbox image: one static binary (hack/pause/pause.c), packed as a docker-save archive.
has_image() { # ref (grep reads all the input: with pipefail an early exit would fail the pipe)
  ctr_k8s images ls -q 2>/dev/null | grep -x "$1" >/dev/null
}

ensure_pause_image() {
  if has_image "${OOMLAB_PAUSE_IMAGE}"; then return; fi
  log "pause image: building ${OOMLAB_PAUSE_IMAGE} from hack/pause/pause.c"
  local tar="${OOMLAB_CLUSTER_STATE}/pause-image.tar"
  oomlab_pause_image_tar "${tar}" "${OOMLAB_PAUSE_IMAGE}"
  ctr_k8s images import "${tar}" >&2
  rm -f "${tar}"
  has_image "${OOMLAB_PAUSE_IMAGE}" || die "pause image import failed"
}

start_controller_manager() {
  start_daemon kube-controller-manager "${OOMLAB_K8S_BIN}/kube-controller-manager" \
    --kubeconfig "${OOMLAB_CLUSTER_STATE}/controller-manager.kubeconfig" \
    --authentication-kubeconfig "${OOMLAB_CLUSTER_STATE}/controller-manager.kubeconfig" \
    --authorization-kubeconfig "${OOMLAB_CLUSTER_STATE}/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false \
    --service-account-private-key-file "${PKI}/sa.key" --root-ca-file "${PKI}/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file "${PKI}/ca.crt" --cluster-signing-key-file "${PKI}/ca.key" \
    --service-cluster-ip-range "${OOMLAB_SERVICE_CIDR}" --profiling=false --v=1
}

start_scheduler() {
  start_daemon kube-scheduler "${OOMLAB_K8S_BIN}/kube-scheduler" \
    --kubeconfig "${OOMLAB_CLUSTER_STATE}/scheduler.kubeconfig" \
    --authentication-kubeconfig "${OOMLAB_CLUSTER_STATE}/scheduler.kubeconfig" \
    --authorization-kubeconfig "${OOMLAB_CLUSTER_STATE}/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false --v=1
}

start_kubelet() {
  # This host is cgroup v1 (hybrid): kubelet 1.35+ refuses v1 unless told (failCgroupV1 defaults
  # to true), and LimitedSwap needs v2. The node states the setting as the label
  # oomlab.dev/fail-cgroup-v1, from this one value, so that node facts can say it; and its
  # cgroup version as oomlab.dev/cgroup-version, read from this kernel as the VM nodes do.
  local fail_cgroup_v1=false cgroup_version=v1
  [[ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]] || cgroup_version=v2
  mkdir -p "${OOMLAB_KUBELET_ROOT}" "${OOMLAB_CLUSTER_STATE}/pod-logs"
  write_if_changed "${OOMLAB_CLUSTER_STATE}/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${OOMLAB_NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: ${PKI}/kubelet-server.crt
tlsPrivateKeyFile: ${PKI}/kubelet-server.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${PKI}/ca.crt}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
cgroupDriver: cgroupfs
failCgroupV1: ${fail_cgroup_v1}
failSwapOn: false
memorySwap:
  swapBehavior: ${OOMLAB_NODE_SWAP_BEHAVIOR}
resolvConf: ${OOMLAB_CLUSTER_STATE}/resolv.conf
clusterDomain: cluster.local
podLogsDir: ${OOMLAB_CLUSTER_STATE}/pod-logs
# Offline: an image that is garbage-collected cannot be pulled again, so never collect images.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  nodefs.inodesFree: 2%
  imagefs.available: 2%
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
protectKernelDefaults: false
EOF
  start_daemon kubelet "${OOMLAB_K8S_BIN}/kubelet" \
    --config "${OOMLAB_CLUSTER_STATE}/kubelet-config.yaml" \
    --kubeconfig "${OOMLAB_CLUSTER_STATE}/kubelet.kubeconfig" \
    --root-dir "${OOMLAB_KUBELET_ROOT}" \
    --hostname-override "${OOMLAB_NODE_NAME}" --node-ip "${OOMLAB_NODE_IP}" \
    --node-labels "oomlab.dev/swap-behavior=${OOMLAB_NODE_SWAP_BEHAVIOR},oomlab.dev/fail-cgroup-v1=${fail_cgroup_v1},oomlab.dev/cgroup-version=${cgroup_version}" --v=1
}

start_kube_proxy() {
  write_if_changed "${OOMLAB_CLUSTER_STATE}/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${OOMLAB_CLUSTER_STATE}/kube-proxy.kubeconfig
hostnameOverride: ${OOMLAB_NODE_NAME}
mode: iptables
clusterCIDR: ${OOMLAB_POD_SUBNET}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["${OOMLAB_NODE_IP}/32"]
iptables:
  localhostNodePorts: false
# 0 = leave the host's conntrack settings as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  start_daemon kube-proxy "${OOMLAB_K8S_BIN}/kube-proxy" \
    --config "${OOMLAB_CLUSTER_STATE}/kube-proxy-config.yaml" --v=1
}

node_ready() {
  [[ "$(kubectl_admin get node "${OOMLAB_NODE_NAME}" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# --- stopping -------------------------------------------------------------------------------------

our_shim_pids() { # containerd shims started for our containerd socket
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"${p}/cmdline" 2>/dev/null | grep "containerd-shim.* -address ${CONTAINERD_SOCK}" >/dev/null && echo "${p#/proc/}"
  done
  return 0
}

stop_components() {
  # Let the kubelet tear pods down properly (CNI DEL, netns removal) while everything still runs.
  if pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null && pid_of containerd >/dev/null; then
    log "down: deleting all pods"
    kubectl_admin delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    oomlab_wait_for 60 "the pods' containers to stop" no_tasks_left || true
  fi
  local c id pid
  for c in kube-proxy kubelet kube-scheduler kube-controller-manager; do stop_daemon "${c}"; done
  # Whatever is still running in our containerd: kill it.
  if pid_of containerd >/dev/null; then
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
      ctr_k8s tasks kill -s KILL "${id}" >/dev/null 2>&1 || true
    done
    oomlab_wait_for 10 "killed tasks to exit" no_running_tasks || true
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "${id}" >/dev/null 2>&1 || true; done
    for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "${id}" >/dev/null 2>&1 || true; done
  fi
  stop_daemon containerd
  for pid in $(our_shim_pids); do
    log "down: killing leftover shim ${pid}"
    kill -KILL "${pid}" 2>/dev/null || true
  done
  stop_daemon kube-apiserver
  stop_daemon etcd
}

no_tasks_left() { [[ -z "$(ctr_k8s tasks ls -q 2>/dev/null || true)" ]]; }

no_running_tasks() { ! ctr_k8s tasks ls 2>/dev/null | awk 'NR > 1 { print $3 }' | grep -qx RUNNING; }

# The pod cgroups our kubelet made (cgroupfs driver: kubepods under each v1 hierarchy), deepest
# first; a kubepods tree that was there before the first `up` is someone else's and stays.
remove_pod_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    [[ -d "${d}" ]] || continue
    grep -qxF "${d}" "${OOMLAB_CLUSTER_STATE}/cgroups.orig" 2>/dev/null && continue
    find "${d}" -depth -type d -exec rmdir {} \; 2>/dev/null || log "down: could not remove all of ${d} (busy?)"
  done
}
