#!/usr/bin/env bash
# One entry point for oomlab's Kubernetes clusters.
#
#   hack/cluster.sh up     [--kind local|kind] [IMAGE...]   egress guard, then the cluster, then
#                                                          the VM node when OOMLAB_VM_NODE=1
#   hack/cluster.sh down   [--kind local|kind]              VM node, cluster, then the guard if
#                                                          nothing of the project's is left
#   hack/cluster.sh status [--kind local|kind]              the guard and its counters, the cluster
#
# --kind (or OOMLAB_CLUSTER_KIND): local (default) is hack/local-cluster.sh, upstream components
# as host processes; kind is hack/kind-up.sh / hack/kind-down.sh. `down` with no --kind takes
# down every kind that is up. IMAGEs (default oomlab/memhog:dev oomlab/operator:dev) are imported
# into the local cluster; kind-up loads its own.
# The VM node (a cgroup v2 guest that joins the local cluster) is hack/vm-node.sh up|down|status,
# run when that script exists: `up` only with OOMLAB_VM_NODE=1, `down` and `status` always.
# The second VM node (an older kubelet, hack/vm-node-old.sh) likewise, `up` with OOMLAB_VM_NODE_OLD=1.
# Env: OOMLAB_EGRESS_KEEP=1 keeps the egress guard on `down` (see hack/egress-guard.sh).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

usage() {
  sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

CMD="${1:-}"
(($#)) && shift
KIND="${OOMLAB_CLUSTER_KIND:-}"
IMAGES=()
while (($#)); do
  case "$1" in
    --kind) KIND="${2:?--kind needs local or kind}"; shift 2 ;;
    --kind=*) KIND="${1#*=}"; shift ;;
    -h | --help) usage ;;
    -*) oomlab_die "unknown option: $1" ;;
    *) IMAGES+=("$1"); shift ;;
  esac
done
case "${KIND}" in
  "" | local | kind) ;;
  *) oomlab_die "--kind must be local or kind, not '${KIND}'" ;;
esac
((${#IMAGES[@]})) || IMAGES=(oomlab/memhog:dev oomlab/operator:dev)

VM_NODE="${HACK_DIR}/vm-node.sh"
VM_NODE_OLD="${HACK_DIR}/vm-node-old.sh"

guard() { "${HACK_DIR}/egress-guard.sh" "$@"; }

local_cluster_exists() { [[ -d "${OOMLAB_STATE}/cluster" ]]; }

kind_cluster_exists() {
  local kind_bin
  kind_bin="$(oomlab_kind_bin)" || return 1
  oomlab_docker_ok && "${kind_bin}" get clusters 2>/dev/null | grep -qx oomlab
}

cmd_up() {
  guard up
  case "${KIND:-local}" in
    local) "${HACK_DIR}/local-cluster.sh" up "${IMAGES[@]}" ;;
    kind) echo "export KUBECONFIG=$("${HACK_DIR}/kind-up.sh" | tail -n 1)" ;;
  esac
  if [[ "${OOMLAB_VM_NODE:-0}" == 1 ]]; then
    [[ -x "${VM_NODE}" ]] || oomlab_die "OOMLAB_VM_NODE=1 but ${VM_NODE} does not exist on this branch"
    "${VM_NODE}" up
  fi
  if [[ "${OOMLAB_VM_NODE_OLD:-0}" == 1 ]]; then
    [[ -x "${VM_NODE_OLD}" ]] || oomlab_die "OOMLAB_VM_NODE_OLD=1 but ${VM_NODE_OLD} does not exist on this branch"
    "${VM_NODE_OLD}" up
  fi
  # Whatever came up last may have inserted rules above the guard's jumps: put them back first.
  guard up
}

cmd_down() {
  if [[ -x "${VM_NODE_OLD}" ]]; then "${VM_NODE_OLD}" down; fi
  if [[ -x "${VM_NODE}" ]]; then "${VM_NODE}" down; fi
  if [[ "${KIND}" == kind ]] || { [[ -z "${KIND}" ]] && kind_cluster_exists; }; then
    "${HACK_DIR}/kind-down.sh"
  fi
  if [[ "${KIND}" == local ]] || { [[ -z "${KIND}" ]] && local_cluster_exists; }; then
    "${HACK_DIR}/local-cluster.sh" down
  fi
  guard down --if-idle
}

cmd_status() {
  local rc=0
  guard status || rc=1
  case "${KIND:-local}" in
    local) "${HACK_DIR}/local-cluster.sh" status || rc=1 ;;
    kind)
      if kind_cluster_exists; then
        echo "kind cluster oomlab: exists (KUBECONFIG=$(oomlab_kind_kubeconfig oomlab))"
      else
        echo "kind cluster oomlab: absent"
        rc=1
      fi
      ;;
  esac
  if [[ -x "${VM_NODE}" ]]; then "${VM_NODE}" status || true; fi
  if [[ -x "${VM_NODE_OLD}" ]]; then "${VM_NODE_OLD}" status || true; fi
  return "${rc}"
}

case "${CMD}" in
  up) oomlab_need_root "installs the egress guard and starts the cluster"; cmd_up ;;
  down) oomlab_need_root "removes the cluster and the egress guard"; cmd_down ;;
  status) cmd_status ;;
  *) usage ;;
esac
