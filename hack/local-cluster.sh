#!/usr/bin/env bash
# A single-node Kubernetes cluster of real upstream components, run as host processes:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy
# (built by hack/k8s-build.sh), Debian's containerd + runc as the runtime (our own instance,
# own socket and directories, never Docker's), CNI bridge + host-local. Works offline.
#
# Usage:
#   hack/local-cluster.sh up [REF...]     start (or finish starting) the cluster, then import REFs as
#                                         `images` does; prints export KUBECONFIG=... on stdout
#   hack/local-cluster.sh down            stop it and remove everything it made
#   hack/local-cluster.sh status          what is running
#   hack/local-cluster.sh images REF...   import images into the cluster's containerd (k8s.io namespace);
#                                         REF is a docker-save tarball path or an image name that a
#                                         Docker engine at /var/run/docker.sock has
#   hack/local-cluster.sh kubeconfig      print the admin kubeconfig path
#
# Addresses (all inside 100.64.0.0/10, all local to this host; nothing is routed off it):
#   bridge oomlab0 / node IP / API server 100.64.0.1; pods 100.64.0.0/24; services 100.96.0.0/24.
# The API server listens on the bridge address, not 127.0.0.1: the `kubernetes` Service's
# endpoint may not be a loopback address, and pods can only reach the API server through it.
# An iptables guard drops anything for 100.64.0.0/24 that arrives from outside this host, and
# forwarding from the bridge to any other interface is dropped.
#
# Notes on this host (cgroup v1 hybrid, no CAP_SYS_RESOURCE in the bounding set):
# - kubelet: cgroupfs driver, failCgroupV1: false, failSwapOn: false, swapBehavior NoSwap (the
#   container's memory.memsw.limit_in_bytes equals its memory limit: no swap).
# - containerd: restrict_oom_score_adj (runc cannot set the negative oom_score_adj the kubelet
#   asks for); RuntimeClass `runc` only: crun 1.8.1 refuses cgroup v1 hybrid hosts.
# - The kubelet sets vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1 (and keys
#   limits) when it starts; `up` records the old values once and `down` puts them back.
# - No cluster DNS (no image for it); pods get a resolv.conf pointing at 127.0.0.1. Workloads
#   reach the API server through the `kubernetes` Service (kube-proxy, iptables mode).
# - Image GC is off (imageGCHighThresholdPercent: 100): offline, a collected image cannot come back.
# Env: OOMLAB_STATE (default /var/lib/oomlab), OOMLAB_RUN (/run/oomlab), OOMLAB_CACHE, and the
# OOMLAB_* settings below.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${HACK_DIR}/.." && pwd)"
# shellcheck source=hack/k8s-env.sh
source "${HACK_DIR}/k8s-env.sh"

: "${OOMLAB_CLUSTER_STATE:=${OOMLAB_STATE}/cluster}"           # certs, configs, etcd data, logs, pids
: "${OOMLAB_CONTAINERD_ROOT:=${OOMLAB_STATE}/cluster-containerd}"
: "${OOMLAB_KUBELET_ROOT:=${OOMLAB_STATE}/cluster-kubelet}"
: "${OOMLAB_CLUSTER_RUN:=${OOMLAB_RUN}/cluster}"               # containerd state and socket, runc state
: "${OOMLAB_NODE_NAME:=oomlab-node}"
: "${OOMLAB_BRIDGE:=oomlab0}"
: "${OOMLAB_NODE_IP:=100.64.0.1}"
: "${OOMLAB_POD_SUBNET:=100.64.0.0/24}"
# Pods get addresses from here up; the ones below are for the VM node (hack/vm-node.sh: .2).
: "${OOMLAB_POD_RANGE_START:=100.64.0.16}"
: "${OOMLAB_SERVICE_CIDR:=100.96.0.0/24}"
: "${OOMLAB_API_SERVICE_IP:=100.96.0.1}"
: "${OOMLAB_API_PORT:=6443}"
: "${OOMLAB_ETCD_PORT:=2379}"
: "${OOMLAB_ETCD_PEER_PORT:=2380}"
: "${OOMLAB_PAUSE_IMAGE:=localhost/oomlab-pause:1}"
: "${OOMLAB_WAIT_SECONDS:=180}"

PKI="${OOMLAB_CLUSTER_STATE}/pki"
LOGS="${OOMLAB_CLUSTER_STATE}/logs"
PIDS="${OOMLAB_CLUSTER_STATE}/pids"
KUBECONFIG_ADMIN="${OOMLAB_CLUSTER_STATE}/kubeconfig"
CONTAINERD_SOCK="${OOMLAB_CLUSTER_RUN}/containerd/containerd.sock"
CNI_CONF_DIR="${OOMLAB_CLUSTER_STATE}/cni/net.d"
CNI_BIN_DIR=/usr/lib/cni
# Kernel settings the kubelet changes on start (it insists on its values); `down` restores them.
KUBELET_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
                 kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
COMPONENTS_START=(etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy)

log() { oomlab_log "$@"; }
die() { oomlab_die "$@"; }

kubectl_admin() { "${OOMLAB_K8S_BIN}/kubectl" --kubeconfig "${KUBECONFIG_ADMIN}" "$@"; }
ctr_k8s() { ctr --address "${CONTAINERD_SOCK}" --namespace k8s.io "$@"; }

# ---------------------------------------------------------------------------------------------
# checks and prerequisites

in_shared_range() { # IP or CIDR must be inside 100.64.0.0/10
  local a b
  IFS=. read -r a b _ <<<"${1%/*}"
  [[ "${a}" == 100 && "${b}" -ge 64 && "${b}" -le 127 ]]
}

check_config() {
  [[ ${EUID} -eq 0 ]] || die "run as root (the cluster manages cgroups, mounts and iptables)"
  local x
  for x in "${OOMLAB_NODE_IP}" "${OOMLAB_POD_SUBNET}" "${OOMLAB_SERVICE_CIDR}" "${OOMLAB_API_SERVICE_IP}"; do
    in_shared_range "${x}" || die "${x} is outside 100.64.0.0/10; pick addresses in that range"
  done
}

ensure_packages() {
  oomlab_apt_install containerd runc containernetworking-plugins openssl iptables iproute2 curl gcc libc6-dev
}

ensure_binaries() {
  local absent=0 c
  for c in "${OOMLAB_K8S_COMPONENTS[@]}"; do [[ -x "${OOMLAB_K8S_BIN}/${c}" ]] || absent=1; done
  [[ -x "${OOMLAB_ETCD_BIN}/etcd" ]] || absent=1
  if ((absent)); then
    log "Kubernetes/etcd binaries missing: building them (hack/k8s-build.sh)"
    "${HACK_DIR}/k8s-build.sh" etcd k8s
  fi
}

# ---------------------------------------------------------------------------------------------
# processes: one pid file per component; a pid counts only if it still runs the same binary

pid_of() { # component -> pid if running
  local f="${PIDS}/$1.pid" pid exe
  [[ -f "${f}" ]] || return 1
  read -r pid exe <"${f}" || return 1
  [[ -n "${pid}" && -d "/proc/${pid}" ]] || return 1
  [[ "$(readlink "/proc/${pid}/exe" 2>/dev/null)" == "${exe}" ]] || return 1
  echo "${pid}"
}

start_daemon() { # component binary args...
  local name="$1" bin="$2"; shift 2
  if pid_of "${name}" >/dev/null; then
    log "${name}: already running (pid $(pid_of "${name}"))"
    return
  fi
  mkdir -p "${LOGS}" "${PIDS}"
  log "${name}: starting (log ${LOGS}/${name}.log)"
  # setsid: the daemon leaves this shell's session, so it outlives the calling terminal.
  setsid "${bin}" "$@" >>"${LOGS}/${name}.log" 2>&1 </dev/null &
  local pid=$!
  echo "${pid} $(readlink -f "${bin}")" >"${PIDS}/${name}.pid"
  sleep 1
  pid_of "${name}" >/dev/null || { tail -n 30 "${LOGS}/${name}.log" >&2; die "${name} exited at once"; }
}

stop_daemon() { # component
  local name="$1" pid i
  pid="$(pid_of "${name}")" || { rm -f "${PIDS}/${name}.pid"; return 0; }
  log "${name}: stopping pid ${pid}"
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    [[ -d "/proc/${pid}" ]] || break
    sleep 0.5
  done
  if [[ -d "/proc/${pid}" ]]; then kill -KILL "${pid}" 2>/dev/null || true; fi
  rm -f "${PIDS}/${name}.pid"
}

# Writes stdin to a file only if the content differs: a running kube-proxy exits when its
# config file is touched, so a second `up` must leave unchanged files alone.
write_if_changed() { # file
  local tmp
  tmp="$(mktemp "$1.XXXXXX")"
  cat >"${tmp}"
  if cmp -s "${tmp}" "$1"; then rm -f "${tmp}"; else mv -f "${tmp}" "$1"; fi
}

wait_for() { # description seconds command...
  local what="$1" secs="$2" i; shift 2
  for ((i = 0; i < secs; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "timed out after ${secs}s waiting for ${what} (logs: ${LOGS})"
}

# ---------------------------------------------------------------------------------------------
# certificates and kubeconfigs (openssl, offline)

gen_ca() {
  [[ -f "${PKI}/ca.crt" ]] && return
  log "pki: creating the cluster CA"
  openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 3650 \
    -keyout "${PKI}/ca.key" -out "${PKI}/ca.crt" -subj "/CN=oomlab-local-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

gen_cert() { # name subject usage(server|client|both) [subjectAltName]
  local name="$1" subj="$2" usage="$3" san="${4:-}" eku
  [[ -f "${PKI}/${name}.crt" ]] && return
  case "${usage}" in
    server) eku=serverAuth ;;
    client) eku=clientAuth ;;
    both) eku=serverAuth,clientAuth ;;
  esac
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=${eku}"
    [[ -n "${san}" ]] && echo "subjectAltName=${san}"
  } >"${PKI}/${name}.ext"
  openssl req -new -nodes -newkey rsa:2048 -keyout "${PKI}/${name}.key" -out "${PKI}/${name}.csr" -subj "${subj}" 2>/dev/null
  openssl x509 -req -sha256 -days 365 -in "${PKI}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" \
    -CAcreateserial -out "${PKI}/${name}.crt" -extfile "${PKI}/${name}.ext" 2>/dev/null
  rm -f "${PKI}/${name}.csr" "${PKI}/${name}.ext"
}

write_kubeconfig() { # file user cert-name
  local file="$1" user="$2" cert="$3"
  [[ -f "${file}" ]] && return
  cat >"${file}" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: oomlab
  cluster:
    server: https://${OOMLAB_NODE_IP}:${OOMLAB_API_PORT}
    certificate-authority-data: $(base64 -w0 "${PKI}/ca.crt")
users:
- name: ${user}
  user:
    client-certificate-data: $(base64 -w0 "${PKI}/${cert}.crt")
    client-key-data: $(base64 -w0 "${PKI}/${cert}.key")
contexts:
- name: oomlab
  context: {cluster: oomlab, user: ${user}}
current-context: oomlab
EOF
  chmod 600 "${file}"
}

make_pki() {
  mkdir -p "${PKI}"
  chmod 700 "${PKI}"
  gen_ca
  gen_cert kube-apiserver "/CN=kube-apiserver" server \
    "IP:${OOMLAB_NODE_IP},IP:${OOMLAB_API_SERVICE_IP},IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  gen_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
  gen_cert admin "/O=system:masters/CN=oomlab-admin" client
  gen_cert kube-controller-manager "/CN=system:kube-controller-manager" client
  gen_cert kube-scheduler "/CN=system:kube-scheduler" client
  gen_cert kube-proxy "/CN=system:kube-proxy" client
  gen_cert kubelet-client "/O=system:nodes/CN=system:node:${OOMLAB_NODE_NAME}" client
  gen_cert kubelet-server "/CN=${OOMLAB_NODE_NAME}" server "IP:${OOMLAB_NODE_IP},DNS:${OOMLAB_NODE_NAME}"
  if [[ ! -f "${PKI}/sa.key" ]]; then
    log "pki: creating the service-account signing key"
    openssl genrsa -out "${PKI}/sa.key" 2048 2>/dev/null
    openssl rsa -in "${PKI}/sa.key" -pubout -out "${PKI}/sa.pub" 2>/dev/null
  fi
  chmod 600 "${PKI}"/*.key
  write_kubeconfig "${KUBECONFIG_ADMIN}" oomlab-admin admin
  write_kubeconfig "${OOMLAB_CLUSTER_STATE}/controller-manager.kubeconfig" system:kube-controller-manager kube-controller-manager
  write_kubeconfig "${OOMLAB_CLUSTER_STATE}/scheduler.kubeconfig" system:kube-scheduler kube-scheduler
  write_kubeconfig "${OOMLAB_CLUSTER_STATE}/kube-proxy.kubeconfig" system:kube-proxy kube-proxy
  write_kubeconfig "${OOMLAB_CLUSTER_STATE}/kubelet.kubeconfig" "system:node:${OOMLAB_NODE_NAME}" kubelet-client
}

# ---------------------------------------------------------------------------------------------
# host network: our bridge, and guards so nothing of ours talks to anything off this host

save_host_settings() {
  # Taken once, at the first `up`, before the kubelet changes anything.
  [[ -f "${OOMLAB_CLUSTER_STATE}/sysctl.orig" ]] && return
  local k
  for k in "${KUBELET_SYSCTLS[@]}"; do echo "${k}=$(sysctl -n "${k}")"; done >"${OOMLAB_CLUSTER_STATE}/sysctl.orig"
  { iptables-save 2>/dev/null || true; } | sed -n 's/^:\([^ ]*\) .*/\1/p' | sort -u >"${OOMLAB_CLUSTER_STATE}/iptables-chains.orig"
  { ls /run/netns 2>/dev/null || true; } >"${OOMLAB_CLUSTER_STATE}/netns.orig"
}

ensure_network() {
  if ! ip link show "${OOMLAB_BRIDGE}" >/dev/null 2>&1; then
    log "network: creating bridge ${OOMLAB_BRIDGE} ${OOMLAB_NODE_IP}/${OOMLAB_POD_SUBNET#*/}"
    ip link add "${OOMLAB_BRIDGE}" type bridge
  fi
  ip addr show dev "${OOMLAB_BRIDGE}" | grep "inet ${OOMLAB_NODE_IP}/" >/dev/null ||
    ip addr add "${OOMLAB_NODE_IP}/${OOMLAB_POD_SUBNET#*/}" dev "${OOMLAB_BRIDGE}"
  ip link set "${OOMLAB_BRIDGE}" up
  # Guards, in chains of our own so `down` can remove exactly them.
  iptables -N OOMLAB-INPUT 2>/dev/null || iptables -F OOMLAB-INPUT
  iptables -A OOMLAB-INPUT -i lo -j RETURN
  iptables -A OOMLAB-INPUT -i "${OOMLAB_BRIDGE}" -j RETURN
  iptables -A OOMLAB-INPUT -d "${OOMLAB_POD_SUBNET}" -j DROP
  iptables -C INPUT -j OOMLAB-INPUT 2>/dev/null || iptables -I INPUT 1 -j OOMLAB-INPUT
  iptables -N OOMLAB-FORWARD 2>/dev/null || iptables -F OOMLAB-FORWARD
  iptables -A OOMLAB-FORWARD -i "${OOMLAB_BRIDGE}" ! -o "${OOMLAB_BRIDGE}" -j DROP
  iptables -A OOMLAB-FORWARD -o "${OOMLAB_BRIDGE}" ! -i "${OOMLAB_BRIDGE}" -j DROP
  iptables -C FORWARD -j OOMLAB-FORWARD 2>/dev/null || iptables -I FORWARD 1 -j OOMLAB-FORWARD
  # Pods resolve nothing: no cluster DNS here, and the host's resolver is not for them.
  printf 'nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n' | write_if_changed "${OOMLAB_CLUSTER_STATE}/resolv.conf"
  mkdir -p "${CNI_CONF_DIR}" "${OOMLAB_CLUSTER_STATE}/cni/ipam"
  write_if_changed "${CNI_CONF_DIR}/10-oomlab.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "oomlab",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${OOMLAB_BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${OOMLAB_CLUSTER_STATE}/cni/ipam",
        "ranges": [[{"subnet": "${OOMLAB_POD_SUBNET}", "rangeStart": "${OOMLAB_POD_RANGE_START}", "gateway": "${OOMLAB_NODE_IP}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
}

# ---------------------------------------------------------------------------------------------
# components

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
# This host is cgroup v1 (hybrid): kubelet 1.35+ refuses v1 unless told, and LimitedSwap needs v2.
failCgroupV1: false
failSwapOn: false
memorySwap:
  swapBehavior: NoSwap
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
    --hostname-override "${OOMLAB_NODE_NAME}" --node-ip "${OOMLAB_NODE_IP}" --v=1
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

cmd_up() {
  check_config
  ensure_packages
  ensure_binaries
  mkdir -p "${OOMLAB_CLUSTER_STATE}" "${LOGS}" "${PIDS}" "${OOMLAB_CLUSTER_RUN}"
  save_host_settings
  make_pki
  ensure_network
  start_etcd
  start_apiserver
  start_containerd
  start_controller_manager
  start_scheduler
  start_kubelet
  start_kube_proxy
  wait_for "the kubelet's health endpoint" "${OOMLAB_WAIT_SECONDS}" curl -fsS http://127.0.0.1:10248/healthz
  log "waiting for node ${OOMLAB_NODE_NAME} to be Ready"
  wait_for "node ${OOMLAB_NODE_NAME} Ready" "${OOMLAB_WAIT_SECONDS}" node_ready
  wait_for "the default service account" "${OOMLAB_WAIT_SECONDS}" kubectl_admin get serviceaccount default -n default
  if [[ -f "${REPO_DIR}/manifests/cluster/runtimeclasses.yaml" ]]; then
    kubectl_admin apply -f "${REPO_DIR}/manifests/cluster/runtimeclasses.yaml" >&2
  fi
  log "cluster is up: $("${OOMLAB_K8S_BIN}/kubectl" version --kubeconfig "${KUBECONFIG_ADMIN}" 2>/dev/null | tr '\n' ' ')"
  echo "export KUBECONFIG=${KUBECONFIG_ADMIN}"
}

# ---------------------------------------------------------------------------------------------
# images

cmd_images() {
  (($#)) || die "usage: $0 images IMAGE-OR-TARBALL..."
  pid_of containerd >/dev/null || die "the cluster's containerd is not running: run '$0 up' first"
  local ref tmp
  for ref in "$@"; do
    if [[ -f "${ref}" ]]; then
      log "images: importing tarball ${ref}"
      ctr_k8s images import "${ref}" >&2
    else
      oomlab_docker_ok || die "${ref} is not a file and no Docker engine answers to save it from"
      oomlab_docker image inspect "${ref}" >/dev/null 2>&1 || die "${ref}: no such file, and the Docker engine has no such image"
      log "images: docker save ${ref} | ctr import"
      tmp="$(mktemp "${OOMLAB_CLUSTER_STATE}/image.XXXXXX.tar")"
      oomlab_docker save "${ref}" -o "${tmp}"
      ctr_k8s images import "${tmp}" >&2 || { rm -f "${tmp}"; die "import of ${ref} failed"; }
      rm -f "${tmp}"
    fi
  done
  ctr_k8s images ls -q >&2
}

# ---------------------------------------------------------------------------------------------
# down: remove what `up` made, and nothing else

delete_iptables_chains() { # iptables-command: remove jumps to, and chains of, KUBE-*/OOMLAB-* that were not there before `up`
  local ipt="$1" table rule chain
  command -v "${ipt}" >/dev/null || return 0
  local keep="${OOMLAB_CLUSTER_STATE}/iptables-chains.orig"
  [[ -f "${keep}" ]] || keep=/dev/null
  for table in filter nat mangle; do
    # Reading a legacy table that does not exist creates it: look only at the loaded ones.
    if [[ "${ipt}" == *legacy* ]] && ! grep -qx "${table}" /proc/net/ip_tables_names 2>/dev/null; then continue; fi
    "${ipt}-save" -t "${table}" >/dev/null 2>&1 || continue
    # jumps from any chain into ours
    while read -r rule; do
      chain="$(sed -n 's/.* -j \([^ ]*\).*/\1/p' <<<"${rule}")"
      grep -qx "${chain}" "${keep}" && continue
      # shellcheck disable=SC2086  # the rule is word-split on purpose, as iptables-save wrote it
      eval "${ipt}" -t "${table}" -D ${rule#-A } 2>/dev/null || true
    done < <("${ipt}-save" -t "${table}" 2>/dev/null | grep -E '^-A .* -j (KUBE-|OOMLAB-)' || true)
    for chain in $("${ipt}-save" -t "${table}" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|OOMLAB-[^ ]*\) .*/\1/p'); do
      grep -qx "${chain}" "${keep}" && continue
      "${ipt}" -t "${table}" -F "${chain}" 2>/dev/null || true
    done
    for chain in $("${ipt}-save" -t "${table}" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\|OOMLAB-[^ ]*\) .*/\1/p'); do
      grep -qx "${chain}" "${keep}" && continue
      "${ipt}" -t "${table}" -X "${chain}" 2>/dev/null || true
    done
  done
}

our_shim_pids() { # containerd shims started for our containerd socket
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"${p}/cmdline" 2>/dev/null | grep "containerd-shim.* -address ${CONTAINERD_SOCK}" >/dev/null && echo "${p#/proc/}"
  done
  return 0
}

cmd_down() {
  [[ ${EUID} -eq 0 ]] || die "run as root"
  log "down: removing the local cluster"
  # Let the kubelet tear pods down properly (CNI DEL, netns removal) while everything still runs.
  if pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null && pid_of containerd >/dev/null; then
    log "down: deleting all pods"
    kubectl_admin delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 60; i++)); do
      [[ -z "$(ctr_k8s tasks ls -q 2>/dev/null | grep -v '^$' || true)" ]] && break
      sleep 1
    done
  fi
  local c
  for c in kube-proxy kubelet kube-scheduler kube-controller-manager; do stop_daemon "${c}"; done
  # Whatever is still running in our containerd: kill it.
  if pid_of containerd >/dev/null; then
    local id
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
      ctr_k8s tasks kill -s KILL "${id}" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "${id}" >/dev/null 2>&1 || true; done
    for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "${id}" >/dev/null 2>&1 || true; done
  fi
  stop_daemon containerd
  local pid
  for pid in $(our_shim_pids); do
    log "down: killing leftover shim ${pid}"
    kill -KILL "${pid}" 2>/dev/null || true
  done
  stop_daemon kube-apiserver
  stop_daemon etcd

  # pod cgroups the kubelet made (cgroupfs driver), deepest first
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    [[ -d "${d}" ]] || continue
    find "${d}" -depth -type d -exec rmdir {} \; 2>/dev/null || log "down: could not remove all of ${d} (busy?)"
  done
  # network namespaces the CRI made (cni-*) that were not there before `up`
  local ns
  for ns in /run/netns/cni-*; do
    [[ -e "${ns}" ]] || continue
    grep -qx "$(basename "${ns}")" "${OOMLAB_CLUSTER_STATE}/netns.orig" 2>/dev/null && continue
    umount "${ns}" 2>/dev/null || umount -l "${ns}" 2>/dev/null || true
    rm -f "${ns}"
  done
  # mounts under our directories, deepest first
  local m
  while read -r m; do
    umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | grep -E "^(${OOMLAB_CLUSTER_STATE}|${OOMLAB_CONTAINERD_ROOT}|${OOMLAB_KUBELET_ROOT}|${OOMLAB_CLUSTER_RUN})(/|$)" | sort -r)

  delete_iptables_chains iptables
  [[ "$(readlink -f "$(command -v iptables)")" == *nft* ]] && delete_iptables_chains iptables-legacy
  [[ "$(readlink -f "$(command -v iptables)")" == *legacy* ]] && delete_iptables_chains iptables-nft
  ip link show "${OOMLAB_BRIDGE}" >/dev/null 2>&1 && { log "down: deleting bridge ${OOMLAB_BRIDGE}"; ip link del "${OOMLAB_BRIDGE}"; }

  if [[ -f "${OOMLAB_CLUSTER_STATE}/sysctl.orig" ]]; then
    log "down: restoring kernel settings the kubelet changed"
    local kv
    while read -r kv; do sysctl -q -w "${kv}" || true; done <"${OOMLAB_CLUSTER_STATE}/sysctl.orig"
  fi
  log "down: removing ${OOMLAB_CLUSTER_STATE} ${OOMLAB_CONTAINERD_ROOT} ${OOMLAB_KUBELET_ROOT} ${OOMLAB_CLUSTER_RUN}"
  rm -rf "${OOMLAB_CLUSTER_STATE}" "${OOMLAB_CONTAINERD_ROOT}" "${OOMLAB_KUBELET_ROOT}" "${OOMLAB_CLUSTER_RUN}"
  log "down: done"
}

cmd_status() {
  local c pid rc=0
  for c in "${COMPONENTS_START[@]}"; do
    if pid="$(pid_of "${c}")"; then
      printf '%-24s running (pid %s)\n' "${c}" "${pid}"
    else
      printf '%-24s stopped\n' "${c}"; rc=1
    fi
  done
  if pid_of kube-apiserver >/dev/null; then
    echo "KUBECONFIG=${KUBECONFIG_ADMIN}"
    kubectl_admin get nodes -o wide 2>&1 || true
    kubectl_admin get pods -A -o wide 2>&1 || true
  fi
  return "${rc}"
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "${cmd}" in
    up) cmd_up; (($#)) && cmd_images "$@"; true ;;
    down) cmd_down ;;
    status) cmd_status ;;
    images) cmd_images "$@" ;;
    kubeconfig) echo "${KUBECONFIG_ADMIN}" ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
