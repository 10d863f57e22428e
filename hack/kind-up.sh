#!/usr/bin/env bash
# Brings up a kind cluster for oomlab and deploys the operator into it:
#   1. detects the host's cgroup version and says what it means for swap in Kubernetes;
#   2. turns host swap on only when asked (--swap SIZE, through hack/swap.sh);
#   3. installs the egress guard (hack/egress-guard.sh), creates the nodes' Docker network inside
#      100.64.0.0/10 (masquerade off, nothing forwarded in or out of its bridge), then creates the
#      kind cluster from manifests/kind/<config>.yaml (skipped if it exists);
#   4. builds the images (hack/images.sh) and loads them into the cluster (kind load), unless
#      the node's containerd already holds them (a node image built with them preloaded:
#      hack/kind-node-image.sh --preload);
#   5. kubectl apply -k manifests/ and waits for the operator to roll out.
# Idempotent: a second run reuses the cluster and rolls the operator only if its image changed.
#
# Usage: hack/kind-up.sh [--swap SIZE] [--config no-swap|limited-swap] [--name NAME]
#                        [--image IMAGE] [--kubeconfig PATH] [--no-build] [--api-server-port PORT]
#   --swap SIZE     enable a host swapfile of SIZE first (e.g. 2G); default: leave swap alone
#   --config NAME   kind config; default: limited-swap on a cgroup v2 host, no-swap on cgroup v1
#   --name NAME     cluster name (default oomlab)
#   --image IMAGE   node image (env OOMLAB_KIND_NODE_IMAGE); default: the offline image built by
#                   hack/kind-node-image.sh (oomlab/kind-node:<k8s version>) when the engine has
#                   it, else the upstream kindest/node image pinned in the config
#   --kubeconfig P  where to write the cluster's kubeconfig (default: $KUBECONFIG, else
#                   ${OOMLAB_STATE}/kind/kubeconfig as root, else ~/.kube/kind-oomlab)
#   --no-build      do not run hack/images.sh (load the images already in the Docker engine)
#   --api-server-port PORT  for an engine on another machine (DOCKER_HOST=tcp://..., e.g. the
#                   qemu guest of hack/kind-vm.sh): the node publishes its API server on PORT of
#                   that machine, and the kubeconfig says https://127.0.0.1:PORT (the machine's
#                   PORT must be forwarded to this host's 127.0.0.1:PORT); the certificate names
#                   127.0.0.1, and kubeadm waits up to 15 min for the control plane (emulation)
# With DOCKER_HOST=tcp://... the engine, its cgroup version, swap, network and bridge are those
# of that machine: --swap is refused (its swap is its own), and the host's egress guard, bridge
# guard and docker shim are not used (nothing of it is on this host). kind then runs with
# hack/kind/docker-wait-boot.sh as `docker`, which waits up to OOMLAB_KIND_NODE_BOOT_SECONDS
# (600) for the node's systemd where kind alone gives it 30 s (too short under emulation).
# A LimitedSwap node is labelled oomlab.dev/cgroup-version and oomlab.dev/thp as read from its
# kernel (as hack/vm-node.sh's node is): the LimitedSwap predictions and tests use them.
# Env: OOMLAB_KIND_WAIT (kind create's --wait for a Ready node, 180s), OOMLAB_KIND_DOCKER_NETWORK
#      (default kind, the network kind uses), its
#      OOMLAB_KIND_DOCKER_SUBNET (default 100.80.0.0/16) and OOMLAB_KIND_BRIDGE (default kindbr0).
# On a host whose capability bounding set lacks CAP_SYS_RESOURCE, kind runs with a docker shim
# (hack/kind/docker-unprivileged.sh) in place of --privileged; the node image must be ours then.
# Needs: a Docker engine (hack/docker-up.sh), kind (PATH or hack/k8s-build.sh kind), kubectl,
#        root for --swap and for hack/images.sh (sudo is used when not root).
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -f "${HACK_DIR}/k8s-env.sh" ]]; then
  # shellcheck source=hack/k8s-env.sh
  source "${HACK_DIR}/k8s-env.sh" # the pinned kind version and where k8s-build.sh puts binaries
fi

ROOT="${OOMLAB_REPO_ROOT}"
NAME=oomlab
CONFIG=""
SWAP_SIZE=""
BUILD=1
KUBECONFIG_OUT=""
API_SERVER_PORT=""
PINNED_KIND="${OOMLAB_KIND_VERSION:-v0.33.0}"
NETWORK="${OOMLAB_KIND_DOCKER_NETWORK:-kind}"
SUBNET="${OOMLAB_KIND_DOCKER_SUBNET:-100.80.0.0/16}"
BRIDGE="${OOMLAB_KIND_BRIDGE:-kindbr0}"
NODE_IMAGE="${OOMLAB_KIND_NODE_IMAGE:-}"
LOCAL_NODE_IMAGE="oomlab/kind-node:${OOMLAB_K8S_VERSION:-v1.37.2}"
IMAGES=(oomlab/memhog:dev oomlab/operator:dev)
KUBEADM_PATCHES=/kind/oomlab-kubeadm-patches # in the node, for a remote engine (see below)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;; # --option=value: as --option value
    --swap) SWAP_SIZE="${2:?--swap needs a size, e.g. 2G}"; shift 2 ;;
    --config) CONFIG="${2:?--config needs no-swap or limited-swap}"; shift 2 ;;
    --name) NAME="${2:?--name needs a value}"; shift 2 ;;
    --image) NODE_IMAGE="${2:?--image needs an image name}"; shift 2 ;;
    --kubeconfig) KUBECONFIG_OUT="${2:?--kubeconfig needs a path}"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --api-server-port) API_SERVER_PORT="${2:?--api-server-port needs a port}"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; oomlab_die "unknown argument: $1" ;;
  esac
done

# --- 1. cgroup version and what it means for swap -----------------------------------------------
REMOTE=0
if oomlab_docker_remote; then
  REMOTE=1
  oomlab_docker_ok || oomlab_die "no Docker engine answers at DOCKER_HOST=${DOCKER_HOST}"
  CGROUP="v$(oomlab_docker info --format '{{.CgroupVersion}}')"
  WHERE="the engine's machine (DOCKER_HOST=${DOCKER_HOST})"
  [[ -z "${SWAP_SIZE}" ]] || oomlab_die "--swap sets this host's swap, but the engine at" \
    "${DOCKER_HOST} runs on another machine with swap of its own (hack/kind-vm.sh --swap sets a guest's)"
else
  CGROUP="$(oomlab_cgroup_version)"
  WHERE=host
  [[ -z "${API_SERVER_PORT}" ]] || oomlab_die "--api-server-port is for an engine on another" \
    "machine (DOCKER_HOST=tcp://...): here kind publishes the API server on 127.0.0.1 itself"
fi
if [[ "${CGROUP}" == v2 ]]; then
  oomlab_log "${WHERE} cgroups: v2 (unified). The kubelet can run LimitedSwap: Burstable pods get" \
    "request / node memory * node swap of swap (memory.swap.max); Guaranteed, BestEffort and" \
    "high-priority pods get none. NoSwap also works."
  : "${CONFIG:=limited-swap}"
else
  oomlab_log "${WHERE} cgroups: v1 (memory on the v1 hierarchy). The kubelet refuses to start with LimitedSwap on cgroup v1, so only NoSwap:" \
    "no pod gets swap, whatever swap the host has (memory+swap limit = memory limit)."
  : "${CONFIG:=no-swap}"
fi
case "${CONFIG}" in
  no-swap) BEHAVIOR=NoSwap ;;
  limited-swap) BEHAVIOR=LimitedSwap ;;
  *) oomlab_die "--config must be no-swap or limited-swap, not '${CONFIG}'" ;;
esac
if [[ "${CONFIG}" == limited-swap && "${CGROUP}" != v2 ]]; then
  oomlab_die "--config limited-swap needs a cgroup v2 host (${WHERE} is v1): the kubelet would" \
    "refuse to start. Use --config no-swap here, or a cgroup v2 host (e.g. an ubuntu-24.04 runner)."
fi
CONFIG_FILE="${ROOT}/manifests/kind/${CONFIG}.yaml"
[[ -f "${CONFIG_FILE}" ]] || oomlab_die "missing ${CONFIG_FILE}"
oomlab_log "kind config: ${CONFIG} (swapBehavior ${BEHAVIOR})"

# --- 2. host swap, only when asked ----------------------------------------------------------------
if [[ -n "${SWAP_SIZE}" ]]; then
  [[ -x "${HACK_DIR}/swap.sh" ]] || oomlab_die "hack/swap.sh is missing: cannot enable swap"
  oomlab_log "enabling ${SWAP_SIZE} of host swap (hack/swap.sh on ${SWAP_SIZE})"
  oomlab_as_root "${HACK_DIR}/swap.sh" on "${SWAP_SIZE}"
fi
if [[ "${REMOTE}" -eq 0 ]]; then
  SWAP_KIB="$(awk '$1=="SwapTotal:"{print $2}' /proc/meminfo)"
  oomlab_log "host swap now: $((SWAP_KIB / 1024)) MiB (kind nodes share the host kernel and see it)"
  if [[ "${BEHAVIOR}" == LimitedSwap && "${SWAP_KIB}" -eq 0 ]]; then
    oomlab_warn "LimitedSwap with no host swap gives every pod 0 bytes of swap: pass --swap 2G to try it"
  fi
fi

# --- tools ----------------------------------------------------------------------------------------
KIND="$(oomlab_kind_bin)" || oomlab_die "no kind binary: put kind on PATH or run hack/k8s-build.sh kind"
KUBECTL="$(oomlab_kubectl_bin)" || oomlab_die "no kubectl: put it on PATH or run hack/k8s-build.sh k8s"
KIND_VERSION="$("${KIND}" version 2>/dev/null | awk '{print $2}')"
oomlab_log "kind: ${KIND} (${KIND_VERSION:-unknown}); kubectl: ${KUBECTL}"
if [[ "${KIND_VERSION}" != "${PINNED_KIND}" ]]; then
  oomlab_warn "the node image in ${CONFIG_FILE#"${ROOT}"/} was built for kind ${PINNED_KIND};" \
    "kind ${KIND_VERSION:-?} may not support it (see that release's notes for its images)"
fi
oomlab_docker_ok || oomlab_die "no Docker engine answers: run hack/docker-up.sh first"

# kind through a docker shim when the host cannot run --privileged containers (see the header).
if [[ "${REMOTE}" -eq 0 ]] && oomlab_lacks_cap_sys_resource; then
  SHIM_DIR="$(mktemp -d)"
  trap 'rm -rf "${SHIM_DIR}"' EXIT
  ln -s "${HACK_DIR}/kind/docker-unprivileged.sh" "${SHIM_DIR}/docker"
  OOMLAB_REAL_DOCKER="$(oomlab_docker_bin)"
  export OOMLAB_REAL_DOCKER
  oomlab_log "no CAP_SYS_RESOURCE in the capability bounding set: kind runs nodes without" \
    "--privileged (hack/kind/docker-unprivileged.sh)"
  kind_() { PATH="${SHIM_DIR}:${PATH}" "${KIND}" "$@"; }
elif [[ "${REMOTE}" -eq 1 ]]; then
  SHIM_DIR="$(mktemp -d)"
  trap 'rm -rf "${SHIM_DIR}"' EXIT
  ln -s "${HACK_DIR}/kind/docker-wait-boot.sh" "${SHIM_DIR}/docker"
  OOMLAB_REAL_DOCKER="$(oomlab_docker_bin)"
  OOMLAB_KIND_BOOT_LOG="${SHIM_DIR}/boot.log"
  # kubeadm's patches for the static pods' probes (the config below points kubeadm at them)
  OOMLAB_KIND_NODE_COPY="${HACK_DIR}/kind/kubeadm-patches:${KUBEADM_PATCHES}"
  export OOMLAB_REAL_DOCKER OOMLAB_KIND_BOOT_LOG OOMLAB_KIND_NODE_COPY
  oomlab_log "a remote engine: kind waits up to ${OOMLAB_KIND_NODE_BOOT_SECONDS:-600} s for the node's" \
    "systemd (hack/kind/docker-wait-boot.sh), not kind's fixed 30 s"
  kind_() { PATH="${SHIM_DIR}:${PATH}" "${KIND}" "$@"; }
else
  kind_() { "${KIND}" "$@"; }
fi

# The node image: ours when the engine has it (it needs no registry), else the config's.
if [[ -z "${NODE_IMAGE}" ]] && oomlab_docker image inspect "${LOCAL_NODE_IMAGE}" >/dev/null 2>&1; then
  NODE_IMAGE="${LOCAL_NODE_IMAGE}"
fi
if [[ -n "${NODE_IMAGE}" ]]; then
  oomlab_log "node image: ${NODE_IMAGE}"
  # Our image's CNI config is static: the cluster's pod range must be the one it was built for.
  image_pods="$(oomlab_docker image inspect --format '{{ index .Config.Labels "org.oomlab.kind-pod-subnet" }}' "${NODE_IMAGE}" 2>/dev/null || true)"
  config_pods="$(awk '$1=="podSubnet:"{print $2}' "${CONFIG_FILE}")"
  if [[ -n "${image_pods}" && "${image_pods}" != "${config_pods}" ]]; then
    oomlab_die "${NODE_IMAGE} routes pods in ${image_pods}, ${CONFIG_FILE#"${ROOT}"/} says ${config_pods}:" \
      "rebuild it with OOMLAB_KIND_POD_SUBNET=${config_pods} hack/kind-node-image.sh"
  fi
else
  oomlab_log "node image: the one pinned in ${CONFIG_FILE#"${ROOT}"/}"
fi

[[ -n "${KUBECONFIG_OUT}" ]] || KUBECONFIG_OUT="$(oomlab_kind_kubeconfig "${NAME}")"
mkdir -p "$(dirname "${KUBECONFIG_OUT}")"
kc() { "${KUBECTL}" --kubeconfig "${KUBECONFIG_OUT}" "$@"; }

# --- 3. the cluster -------------------------------------------------------------------------------
# The egress guard before any network: nothing for 100.64.0.0/10 leaves the machine. (An engine
# on another machine makes its networks there: that machine keeps them in, e.g. a guest with
# qemu's restrict=on network.)
if [[ "${REMOTE}" -eq 1 ]]; then
  oomlab_log "the kind network and nodes are on the engine's machine: no guard on this host"
elif [[ -x "${HACK_DIR}/egress-guard.sh" ]]; then
  oomlab_as_root "${HACK_DIR}/egress-guard.sh" up
elif oomlab_as_root iptables -w 10 -S | grep -- '-j OOMLAB-EGRESS' >/dev/null; then
  oomlab_log "egress guard: in place"
else
  oomlab_die "no egress guard (hack/egress-guard.sh) and none installed: not creating networks"
fi

# The nodes' Docker network, made before kind would make one in a private range: inside
# 100.64.0.0/10, no masquerade, and a FORWARD guard on its bridge.
if ! oomlab_docker network inspect "${NETWORK}" >/dev/null 2>&1; then
  oomlab_run "$(oomlab_docker_bin)" network create --driver bridge --subnet "${SUBNET}" \
    --gateway "${SUBNET%.*/*}.1" -o com.docker.network.bridge.enable_ip_masquerade=false \
    -o "com.docker.network.bridge.name=${BRIDGE}" \
    --label oomlab.dev/created-by=kind-up "${NETWORK}" >/dev/null
fi
have_subnets="$(oomlab_docker network inspect --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "${NETWORK}")"
for net in ${have_subnets}; do
  oomlab_in_shared_range "${net}" ||
    oomlab_die "Docker network ${NETWORK} has ${net}, outside 100.64.0.0/10: remove it (hack/kind-down.sh)"
done
if [[ "${REMOTE}" -eq 0 ]]; then
  oomlab_as_root bash -c "source '${HACK_DIR}/lib.sh' && oomlab_kind_bridge_guard up '${BRIDGE}'"
fi
oomlab_log "Docker network ${NETWORK}: ${have_subnets}(bridge ${BRIDGE}$([[ "${REMOTE}" -eq 1 ]] || echo ', guarded'))"
[[ "${NETWORK}" == kind ]] || export KIND_EXPERIMENTAL_DOCKER_NETWORK="${NETWORK}"

# The API server of a node on another machine: published on its API_SERVER_PORT, reached here
# at 127.0.0.1:API_SERVER_PORT (forwarded), so the certificate must name 127.0.0.1.
if [[ -n "${API_SERVER_PORT}" ]]; then
  REMOTE_CONFIG="$(mktemp)"
  trap 'rm -f "${REMOTE_CONFIG}"; [[ -z "${SHIM_DIR:-}" ]] || rm -rf "${SHIM_DIR}"' EXIT
  sed "s/^networking:\$/&\n  apiServerAddress: \"0.0.0.0\"\n  apiServerPort: ${API_SERVER_PORT}/" \
    "${CONFIG_FILE}" >"${REMOTE_CONFIG}"
  # kind applies a patch only to the kubeadm API version it generates: v1beta3 below Kubernetes
  # 1.36, v1beta4 from 1.36 on (kind v0.33), where the control plane timeout moved;
  # kubeadm 1.37 also bootstraps admin.conf's ClusterRoleBinding within kubernetesAPICall (1 min
  # by default), which can pass before an emulated API server first answers.
  # The static pods' liveness probes (kubeadm: 15 s timeout, 8 failures) restarted a busy API
  # server twice mid-init in a TCG guest: kubeadm patches them from hack/kind/kubeadm-patches,
  # which the docker shim copies into the node before kubeadm runs. The controller manager and the
  # scheduler of the one control plane node run without leader election: under TCG their lease
  # renewals (5 s timeout) failed, and each exit on a lost lease (5 restarts in 15 min, the
  # operator's Deployment not rolled out meanwhile); kind v0.33 appends these extraArgs to its own.
  cat >>"${REMOTE_CONFIG}" <<'EOF'
kubeadmConfigPatches:
  - |
    apiVersion: kubeadm.k8s.io/v1beta3
    kind: ClusterConfiguration
    apiServer:
      certSANs: [localhost, "127.0.0.1"]
      timeoutForControlPlane: 15m0s
  - |
    apiVersion: kubeadm.k8s.io/v1beta3
    kind: InitConfiguration
    patches:
      directory: KUBEADM_PATCHES
  - |
    apiVersion: kubeadm.k8s.io/v1beta4
    kind: ClusterConfiguration
    apiServer:
      certSANs: [localhost, "127.0.0.1"]
    controllerManager:
      extraArgs:
        - name: leader-elect
          value: "false"
    scheduler:
      extraArgs:
        - name: leader-elect
          value: "false"
  - |
    apiVersion: kubeadm.k8s.io/v1beta4
    kind: InitConfiguration
    timeouts:
      controlPlaneComponentHealthCheck: 15m0s
      kubernetesAPICall: 15m0s
    patches:
      directory: KUBEADM_PATCHES
EOF
  sed -i "s|KUBEADM_PATCHES|${KUBEADM_PATCHES}|" "${REMOTE_CONFIG}"
  grep -q "apiServerPort: ${API_SERVER_PORT}" "${REMOTE_CONFIG}" ||
    oomlab_die "${CONFIG_FILE#"${ROOT}"/} has no top-level 'networking:' to add the API server port to"
  CONFIG_FILE="${REMOTE_CONFIG}"
fi
# kind writes the address the node publishes on; from here it is the forwarded 127.0.0.1:PORT.
export_kubeconfig() {
  [[ -z "${API_SERVER_PORT}" ]] ||
    kc config set-cluster "kind-${NAME}" --server "https://127.0.0.1:${API_SERVER_PORT}" >/dev/null
}

# The control plane's containers in the node (attempt = restarts + 1); with --logs also the last
# lines of every one that exited: what a slow machine did to kubeadm init.
control_plane_containers() { # [--logs]
  local node="${NAME}-control-plane" id
  oomlab_log "containers in ${node}:"
  oomlab_docker exec "${node}" crictl ps -a >&2 || return 0
  [[ "${1:-}" == --logs ]] || return 0
  for id in $(oomlab_docker exec "${node}" crictl ps -a -q --state exited 2>/dev/null); do
    oomlab_docker exec "${node}" crictl logs --tail 15 "${id}" 2>&1 | sed "s/^/  ${id:0:8}: /" >&2 || true
  done
}

if kind_ get clusters 2>/dev/null | grep -qx "${NAME}"; then
  oomlab_log "kind cluster ${NAME} exists: reusing it"
  kind_ export kubeconfig --name "${NAME}" --kubeconfig "${KUBECONFIG_OUT}" >&2
  export_kubeconfig
  have="$(kc get nodes -o jsonpath='{.items[0].metadata.labels.oomlab\.dev/swap-behavior}' 2>/dev/null || true)"
  if [[ -n "${have}" && "${have}" != "${BEHAVIOR}" ]]; then
    oomlab_warn "cluster ${NAME} runs ${have}, not ${BEHAVIOR}: run hack/kind-down.sh first to switch"
    BEHAVIOR="${have}"
  fi
else
  create_start=${SECONDS}
  # A remote engine's node is kept when the create fails (--retain), to say why, then deleted.
  if ! oomlab_run kind_ create cluster --name "${NAME}" --config "${CONFIG_FILE}" \
    ${NODE_IMAGE:+--image "${NODE_IMAGE}"} --kubeconfig "${KUBECONFIG_OUT}" \
    --wait "${OOMLAB_KIND_WAIT:-180s}" ${API_SERVER_PORT:+--retain}; then
    [[ ! -s "${OOMLAB_KIND_BOOT_LOG:-}" ]] || oomlab_log "$(cat "${OOMLAB_KIND_BOOT_LOG}")"
    [[ -z "${API_SERVER_PORT}" ]] || { control_plane_containers --logs; kind_ delete cluster --name "${NAME}" >&2; }
    oomlab_die "kind create cluster ${NAME} failed after $((SECONDS - create_start)) s"
  fi
  [[ ! -s "${OOMLAB_KIND_BOOT_LOG:-}" ]] || oomlab_log "$(cat "${OOMLAB_KIND_BOOT_LOG}")"
  [[ -z "${API_SERVER_PORT}" ]] || control_plane_containers
  oomlab_log "time: kind create -> node Ready: $((SECONDS - create_start)) s"
  export_kubeconfig
fi
if [[ -n "${SUDO_USER:-}" && "$(id -u)" -eq 0 ]]; then
  chown "${SUDO_USER}" "${KUBECONFIG_OUT}" || true
fi
kc get nodes -o wide >&2

# --- 4. images --------------------------------------------------------------------------------------
if [[ "${BUILD}" -eq 1 ]]; then
  oomlab_log "building images (hack/images.sh)"
  oomlab_as_root "${HACK_DIR}/images.sh"
fi
# An image the node's containerd already holds with the engine's ID (or, where the engine does not
# have it, at all: preloaded in the node image) needs no kind load.
node_container="$(kind_ get nodes --name "${NAME}" | head -n1)"
node_image_id() { # image: its ID in the node's containerd, empty when it has none
  # shellcheck disable=SC2016  # expanded by the node's shell
  oomlab_docker exec "${node_container}" sh -c 'crictl inspecti "$1" 2>/dev/null | jq -r .status.id' \
    inspecti "$1" 2>/dev/null || true
}
check_start=${SECONDS}
to_load=()
for image in "${IMAGES[@]}"; do
  engine_id="$(oomlab_docker image inspect --format '{{.Id}}' "${image}" 2>/dev/null || true)"
  node_id="$(node_image_id "${image}")"
  if [[ -n "${node_id}" && ( -z "${engine_id}" || "${engine_id}" == "${node_id}" ) ]]; then
    oomlab_log "${image}: already in the node's containerd (${node_id:7:12}), no kind load"
  elif [[ -n "${engine_id}" ]]; then
    to_load+=("${image}")
  else
    oomlab_die "image ${image} is in neither the engine nor the node: run hack/images.sh (or drop --no-build)"
  fi
  [[ "${image}" != oomlab/operator:dev ]] || OOMLAB_OPERATOR_IMAGE_ID="${engine_id:-${node_id}}"
done
oomlab_log "time: images checked in the node: $((SECONDS - check_start)) s"
if [[ ${#to_load[@]} -gt 0 ]]; then
  load_start=${SECONDS}
  oomlab_run kind_ load docker-image --name "${NAME}" "${to_load[@]}"
  oomlab_log "time: kind load docker-image ${to_load[*]}: $((SECONDS - load_start)) s"
fi
export OOMLAB_OPERATOR_IMAGE_ID

# --- 5. deploy --------------------------------------------------------------------------------------
# Under emulation the API server can drop connections or answer with empty lists for a while
# (seen after a long kind load in a qemu guest): wait until it lists the node again.
lists_a_node() { [[ -n "$(kc get nodes -o name 2>/dev/null)" ]]; }
oomlab_wait_for 600 "the API server to list the node" lists_a_node ||
  oomlab_die "the API server of cluster ${NAME} does not list its node"
# The node's swap behaviour reaches the operator through one source: the node's
# oomlab.dev/swap-behavior label, set by manifests/kind/<config>.yaml.
label="$(kc get nodes -o jsonpath='{.items[0].metadata.labels.oomlab\.dev/swap-behavior}')"
[[ "${label}" == "${BEHAVIOR}" ]] || oomlab_warn "the node's oomlab.dev/swap-behavior label is" \
  "'${label:-missing}', not ${BEHAVIOR}: check ${CONFIG_FILE#"${ROOT}"/}"
# What the LimitedSwap predictions need from the node's kernel, as hack/vm-node.sh's node says it.
if [[ "${BEHAVIOR}" == LimitedSwap ]]; then
  node="$(kc get nodes -o jsonpath='{.items[0].metadata.name}')"
  thp="$(oomlab_docker exec "${node}" cat /sys/kernel/mm/transparent_hugepage/enabled |
    sed -n 's/.*\[\([a-z]*\)\].*/\1/p')"
  oomlab_run "${KUBECTL}" --kubeconfig "${KUBECONFIG_OUT}" label node "${node}" --overwrite \
    "oomlab.dev/cgroup-version=${CGROUP}" "oomlab.dev/thp=${thp:-unknown}" >&2
fi
# kind's containerd has the runc handler the local cluster's RuntimeClass names.
oomlab_run "${KUBECTL}" --kubeconfig "${KUBECONFIG_OUT}" apply -f "${ROOT}/manifests/cluster/runtimeclasses.yaml" >&2
deploy_start=${SECONDS}
KUBECONFIG="${KUBECONFIG_OUT}" "${HACK_DIR}/deploy-operator.sh"
oomlab_log "time: operator deployed and Ready: $((SECONDS - deploy_start)) s"

node_swap="$(kc get nodes -o jsonpath='{.items[0].status.nodeInfo.swap.capacity}')"
oomlab_log "kind cluster ${NAME} is up: ${CONFIG} (${BEHAVIOR}), cgroup ${CGROUP}, node swap $((${node_swap:-0} / 1048576)) MiB"
oomlab_log "try: export KUBECONFIG=${KUBECONFIG_OUT}; kubectl apply -k manifests/samples/; kubectl get oomx -w"
printf '%s\n' "${KUBECONFIG_OUT}"
