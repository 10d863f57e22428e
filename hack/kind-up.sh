#!/usr/bin/env bash
# Brings up a kind cluster for oomlab and deploys the operator into it:
#   1. detects the host's cgroup version and says what it means for swap in Kubernetes;
#   2. turns host swap on only when asked (--swap SIZE, through hack/swap.sh);
#   3. creates the kind cluster from manifests/kind/<config>.yaml (skipped if it exists);
#   4. builds the images (hack/images.sh) and loads them into the cluster (kind load);
#   5. kubectl apply -k manifests/ and waits for the operator to roll out.
# The egress guard (hack/egress-guard.sh) goes in first; the nodes' Docker network is ours, in
# 100.64.0.0/10, on a bridge named kindbr-oomlab (one the guard allows) with masquerade off.
# The node's swap behaviour has one source: its oomlab.dev/swap-behavior label in
# manifests/kind/<config>.yaml, which the operator reads.
# Idempotent: a second run reuses the cluster and rolls the operator only if its image changed.
#
# Usage: hack/kind-up.sh [--swap SIZE] [--config no-swap|limited-swap] [--name NAME]
#                        [--kubeconfig PATH] [--no-build]
#   --swap SIZE     enable a host swapfile of SIZE first (e.g. 2G); default: leave swap alone
#   --config NAME   kind config; default: limited-swap on a cgroup v2 host, no-swap on cgroup v1
#   --name NAME     cluster name (default oomlab)
#   --kubeconfig P  where to write the cluster's kubeconfig (default: $KUBECONFIG, else
#                   ${OOMLAB_STATE}/kind/kubeconfig as root, else ~/.kube/kind-oomlab)
#   --no-build      do not run hack/images.sh (load the images already in the Docker engine)
# Env: OOMLAB_KIND_DOCKER_NETWORK (default oomlab-kind; empty = kind's own "kind" network),
#      OOMLAB_KIND_DOCKER_SUBNET (default 100.66.0.0/24: outside 10/8, 172.16/12, 192.168/16).
# Needs: a Docker engine (hack/docker-up.sh), kind (PATH or hack/k8s-build.sh kind), kubectl,
#        root for --swap and for hack/images.sh (sudo is used when not root).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -f "${HACK_DIR}/k8s-env.sh" ]]; then
  # shellcheck source=hack/k8s-env.sh
  source "${HACK_DIR}/k8s-env.sh" # the pinned kind version and where k8s-build.sh puts binaries
fi
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

ROOT="${OOMLAB_REPO_ROOT}"
NAME=oomlab
CONFIG=""
SWAP_SIZE=""
BUILD=1
KUBECONFIG_OUT=""
PINNED_KIND="${OOMLAB_KIND_VERSION:-v0.30.0}"
NETWORK="${OOMLAB_KIND_DOCKER_NETWORK-oomlab-kind}"
SUBNET="${OOMLAB_KIND_DOCKER_SUBNET:-100.66.0.0/24}"
BRIDGE=kindbr-oomlab
IMAGES=(oomlab/memhog:dev oomlab/operator:dev)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --swap) SWAP_SIZE="${2:?--swap needs a size, e.g. 2G}"; shift 2 ;;
    --swap=*) SWAP_SIZE="${1#*=}"; shift ;;
    --config) CONFIG="${2:?--config needs no-swap or limited-swap}"; shift 2 ;;
    --config=*) CONFIG="${1#*=}"; shift ;;
    --name) NAME="${2:?--name needs a value}"; shift 2 ;;
    --name=*) NAME="${1#*=}"; shift ;;
    --kubeconfig) KUBECONFIG_OUT="${2:?--kubeconfig needs a path}"; shift 2 ;;
    --kubeconfig=*) KUBECONFIG_OUT="${1#*=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; oomlab_die "unknown argument: $1" ;;
  esac
done

# --- 1. cgroup version and what it means for swap -----------------------------------------------
CGROUP="$(oomlab_cgroup_version)"
if [[ "${CGROUP}" == v2 ]]; then
  oomlab_log "host cgroups: v2 (unified). The kubelet can run LimitedSwap: Burstable pods get" \
    "request / node memory * node swap of swap (memory.swap.max); Guaranteed, BestEffort and" \
    "high-priority pods get none. NoSwap also works."
  : "${CONFIG:=limited-swap}"
else
  oomlab_log "host cgroups: v1 ($(stat -fc %T /sys/fs/cgroup 2>/dev/null || echo unknown) on" \
    "/sys/fs/cgroup). The kubelet refuses to start with LimitedSwap on cgroup v1, so only NoSwap:" \
    "no pod gets swap, whatever swap the host has (memory+swap limit = memory limit)."
  : "${CONFIG:=no-swap}"
fi
case "${CONFIG}" in
  no-swap) BEHAVIOR=NoSwap ;;
  limited-swap) BEHAVIOR=LimitedSwap ;;
  *) oomlab_die "--config must be no-swap or limited-swap, not '${CONFIG}'" ;;
esac
if [[ "${CONFIG}" == limited-swap && "${CGROUP}" != v2 ]]; then
  oomlab_die "--config limited-swap needs a cgroup v2 host (this one is v1): the kubelet would" \
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
SWAP_KIB="$(awk '$1=="SwapTotal:"{print $2}' /proc/meminfo)"
oomlab_log "host swap now: $((SWAP_KIB / 1024)) MiB (kind nodes share the host kernel and see it)"
if [[ "${BEHAVIOR}" == LimitedSwap && "${SWAP_KIB}" -eq 0 ]]; then
  oomlab_warn "LimitedSwap with no host swap gives every pod 0 bytes of swap: pass --swap 2G to try it"
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

[[ -n "${KUBECONFIG_OUT}" ]] || KUBECONFIG_OUT="$(oomlab_kind_kubeconfig "${NAME}")"
mkdir -p "$(dirname "${KUBECONFIG_OUT}")"
kc() { "${KUBECTL}" --kubeconfig "${KUBECONFIG_OUT}" "$@"; }

# --- 3. the cluster -------------------------------------------------------------------------------
# Before any network of ours exists: nothing for 100.64.0.0/10 may leave through another interface.
oomlab_as_root "${HACK_DIR}/egress-guard.sh" up
if [[ -n "${NETWORK}" ]]; then
  # Our own Docker network for the kind nodes, so node addresses stay out of the private ranges,
  # on a bridge whose name the egress guard allows, and no masquerading to the outside.
  if ! oomlab_docker network inspect "${NETWORK}" >/dev/null 2>&1; then
    oomlab_run "$(oomlab_docker_bin)" network create --driver bridge --subnet "${SUBNET}" \
      -o com.docker.network.bridge.name="${BRIDGE}" \
      -o com.docker.network.bridge.enable_ip_masquerade=false \
      --label oomlab.dev/created-by=kind-up "${NETWORK}" >/dev/null
  fi
  have_bridge="$(oomlab_docker network inspect --format '{{ index .Options "com.docker.network.bridge.name" }}' "${NETWORK}" 2>/dev/null || true)"
  [[ "${have_bridge}" == "${BRIDGE}" ]] || oomlab_warn "Docker network ${NETWORK} is on bridge" \
    "'${have_bridge:-br-<id>}', not ${BRIDGE}: the egress guard drops 100.64 traffic to it;" \
    "run hack/kind-down.sh to remove it, then kind-up again"
  export KIND_EXPERIMENTAL_DOCKER_NETWORK="${NETWORK}"
fi

if "${KIND}" get clusters 2>/dev/null | grep -qx "${NAME}"; then
  oomlab_log "kind cluster ${NAME} exists: reusing it"
  "${KIND}" export kubeconfig --name "${NAME}" --kubeconfig "${KUBECONFIG_OUT}" >&2
else
  oomlab_run "${KIND}" create cluster --name "${NAME}" --config "${CONFIG_FILE}" \
    --kubeconfig "${KUBECONFIG_OUT}" --wait 180s
fi
# The node's label (from the kind config) is what the operator predicts with: say what it is.
have="$(kc get nodes -o jsonpath='{.items[0].metadata.labels.oomlab\.dev/swap-behavior}' 2>/dev/null || true)"
if [[ -z "${have}" ]]; then
  oomlab_warn "the node has no oomlab.dev/swap-behavior label: the operator falls back to its" \
    "OOMLAB_SWAP_BEHAVIOR default; add the label to ${CONFIG_FILE#"${ROOT}"/}"
elif [[ "${have}" != "${BEHAVIOR}" ]]; then
  oomlab_warn "cluster ${NAME} runs ${have}, not ${BEHAVIOR}: run hack/kind-down.sh first to switch"
  BEHAVIOR="${have}"
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
for image in "${IMAGES[@]}"; do
  oomlab_docker image inspect "${image}" >/dev/null 2>&1 ||
    oomlab_die "image ${image} is missing: run hack/images.sh (or drop --no-build)"
done
oomlab_run "${KIND}" load docker-image --name "${NAME}" "${IMAGES[@]}"

# --- 5. deploy --------------------------------------------------------------------------------------
KUBECONFIG="${KUBECONFIG_OUT}" "${HACK_DIR}/deploy-operator.sh"

oomlab_log "kind cluster ${NAME} is up: ${CONFIG} (${BEHAVIOR}), cgroup ${CGROUP}, host swap $((SWAP_KIB / 1024)) MiB"
oomlab_log "try: export KUBECONFIG=${KUBECONFIG_OUT}; kubectl apply -k manifests/samples/; kubectl get oomx -w"
printf '%s\n' "${KUBECONFIG_OUT}"
