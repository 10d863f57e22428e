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
# forwarding from the bridge to any other interface is dropped. `up` installs the egress guard
# (hack/egress-guard.sh) before anything else; `down` removes it last, when nothing of the
# project's is left. A failed first `up` removes what it made.
#
# The parts, sourced from hack/cluster/: processes.sh (pid files, start/stop), pki.sh
# (certificates, kubeconfigs), network.sh (bridge, CNI, iptables, and their removal),
# components.sh (etcd ... kube-proxy, the pause image, stopping them). hack/cluster.sh is the
# entry point that also knows kind and the VM node.
#
# Notes on this host (cgroup v1 hybrid, no CAP_SYS_RESOURCE in the bounding set):
# - kubelet: cgroupfs driver, failCgroupV1: false (the node says so: label
#   oomlab.dev/fail-cgroup-v1=false), failSwapOn: false, swapBehavior NoSwap (the
#   container's memory.memsw.limit_in_bytes equals its memory limit: no swap); the node carries
#   the same value as its oomlab.dev/swap-behavior label, which the operator reads.
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
# LimitedSwap needs a cgroup v2 host; the kubelet refuses it on v1 (this machine).
: "${OOMLAB_NODE_SWAP_BEHAVIOR:=NoSwap}"

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

# shellcheck source=hack/cluster/processes.sh
source "${HACK_DIR}/cluster/processes.sh"
# shellcheck source=hack/cluster/pki.sh
source "${HACK_DIR}/cluster/pki.sh"
# shellcheck source=hack/cluster/network.sh
source "${HACK_DIR}/cluster/network.sh"
# shellcheck source=hack/cluster/components.sh
source "${HACK_DIR}/cluster/components.sh"

# ---------------------------------------------------------------------------------------------
# checks and prerequisites

check_config() {
  [[ ${EUID} -eq 0 ]] || die "run as root (the cluster manages cgroups, mounts and iptables)"
  local x
  for x in "${OOMLAB_NODE_IP}" "${OOMLAB_POD_SUBNET}" "${OOMLAB_SERVICE_CIDR}" "${OOMLAB_API_SERVICE_IP}"; do
    oomlab_in_shared_range "${x}" || die "${x} is outside 100.64.0.0/10; pick addresses in that range"
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

# What the host had before the first `up`, so that `down` leaves exactly that.
save_host_settings() {
  # Taken once, at the first `up`, before the kubelet changes anything.
  [[ -f "${OOMLAB_CLUSTER_STATE}/sysctl.orig" ]] && return
  local k
  for k in "${KUBELET_SYSCTLS[@]}"; do echo "${k}=$(sysctl -n "${k}")"; done >"${OOMLAB_CLUSTER_STATE}/sysctl.orig"
  { iptables-save 2>/dev/null || true; } | sed -n 's/^:\([^ ]*\) .*/\1/p' | sort -u >"${OOMLAB_CLUSTER_STATE}/iptables-chains.orig"
  { ls /run/netns 2>/dev/null || true; } >"${OOMLAB_CLUSTER_STATE}/netns.orig"
  { ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice 2>/dev/null || true; } >"${OOMLAB_CLUSTER_STATE}/cgroups.orig"
}

any_component_running() {
  local c
  for c in "${COMPONENTS_START[@]}"; do pid_of "${c}" >/dev/null && return 0; done
  return 1
}

# EXIT trap of a first `up`: when it failed, take down what it started.
undo_failed_up() { # exit-status
  (($1 == 0)) && return 0
  set +e
  oomlab_warn "up failed (exit $1): removing what it made (hack/local-cluster.sh down)"
  cmd_down
}

# ---------------------------------------------------------------------------------------------
# up, images, down, status

cmd_up() {
  check_config
  "${HACK_DIR}/egress-guard.sh" up
  if ! any_component_running; then
    # A second `up` of a running cluster that fails leaves it as it was; a first one cleans up.
    trap 'undo_failed_up $?' EXIT
    trap 'exit 130' INT TERM
  fi
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
  # kube-proxy put its own jumps at position 1 of OUTPUT and FORWARD: the guard goes back in front.
  "${HACK_DIR}/egress-guard.sh" up
  trap - EXIT INT TERM
  log "cluster is up: $("${OOMLAB_K8S_BIN}/kubectl" version --kubeconfig "${KUBECONFIG_ADMIN}" 2>/dev/null | tr '\n' ' ')"
  echo "export KUBECONFIG=${KUBECONFIG_ADMIN}"
}

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

# Removes what `up` made, and nothing else; the egress guard last, if nothing of ours is left.
cmd_down() {
  [[ ${EUID} -eq 0 ]] || die "run as root"
  log "down: removing the local cluster"
  stop_components
  remove_pod_cgroups
  # mounts under our directories, deepest first
  local m
  while read -r m; do
    umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | grep -E "^(${OOMLAB_CLUSTER_STATE}|${OOMLAB_CONTAINERD_ROOT}|${OOMLAB_KUBELET_ROOT}|${OOMLAB_CLUSTER_RUN})(/|$)" | sort -r)
  remove_network
  if [[ -f "${OOMLAB_CLUSTER_STATE}/sysctl.orig" ]]; then
    log "down: restoring kernel settings the kubelet changed"
    local kv
    while read -r kv; do sysctl -q -w "${kv}" || true; done <"${OOMLAB_CLUSTER_STATE}/sysctl.orig"
  fi
  log "down: removing ${OOMLAB_CLUSTER_STATE} ${OOMLAB_CONTAINERD_ROOT} ${OOMLAB_KUBELET_ROOT} ${OOMLAB_CLUSTER_RUN}"
  rm -rf "${OOMLAB_CLUSTER_STATE}" "${OOMLAB_CONTAINERD_ROOT}" "${OOMLAB_KUBELET_ROOT}" "${OOMLAB_CLUSTER_RUN}"
  "${HACK_DIR}/egress-guard.sh" down --if-idle
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
