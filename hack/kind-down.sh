#!/usr/bin/env bash
# Removes what hack/kind-up.sh made: the kind cluster, and the Docker network kind-up created
# for it (only if kind-up created it and nothing else uses it) with its bridge's FORWARD guard.
# The egress guard stays (hack/egress-guard.sh down removes it). Idempotent.
# Host swap is left alone unless --swap-off is given (then hack/swap.sh off, which removes only
# the swapfile it created). Images stay in the Docker engine.
#
# Usage: hack/kind-down.sh [--name NAME] [--kubeconfig PATH] [--swap-off]
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [[ -f "${HACK_DIR}/k8s-env.sh" ]]; then
  # shellcheck source=hack/k8s-env.sh
  source "${HACK_DIR}/k8s-env.sh"
fi

NAME=oomlab
KUBECONFIG_OUT=""
SWAP_OFF=0
NETWORK="${OOMLAB_KIND_DOCKER_NETWORK:-kind}"
BRIDGE="${OOMLAB_KIND_BRIDGE:-kindbr0}"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;; # --option=value: as --option value
    --name) NAME="${2:?--name needs a value}"; shift 2 ;;
    --kubeconfig) KUBECONFIG_OUT="${2:?--kubeconfig needs a path}"; shift 2 ;;
    --swap-off) SWAP_OFF=1; shift ;;
    -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) oomlab_die "unknown argument: $1" ;;
  esac
done

[[ -n "${KUBECONFIG_OUT}" ]] || KUBECONFIG_OUT="$(oomlab_kind_kubeconfig "${NAME}")"

if KIND="$(oomlab_kind_bin)"; then
  if "${KIND}" get clusters 2>/dev/null | grep -qx "${NAME}"; then
    if [[ -f "${KUBECONFIG_OUT}" ]]; then
      oomlab_run "${KIND}" delete cluster --name "${NAME}" --kubeconfig "${KUBECONFIG_OUT}"
    else
      oomlab_run "${KIND}" delete cluster --name "${NAME}"
    fi
  else
    oomlab_log "no kind cluster named ${NAME}"
  fi
else
  oomlab_warn "no kind binary found: cannot look for cluster ${NAME}"
fi

if [[ -n "${NETWORK}" ]] && oomlab_docker_ok &&
  oomlab_docker network inspect "${NETWORK}" >/dev/null 2>&1; then
  created_by="$(oomlab_docker network inspect --format '{{ index .Labels "oomlab.dev/created-by" }}' "${NETWORK}" 2>/dev/null || true)"
  users="$(oomlab_docker network inspect --format '{{ len .Containers }}' "${NETWORK}" 2>/dev/null || echo 1)"
  if [[ "${created_by}" == kind-up && "${users}" == 0 ]]; then
    oomlab_run "$(oomlab_docker_bin)" network rm "${NETWORK}" >/dev/null
  else
    oomlab_log "leaving Docker network ${NETWORK} (created by '${created_by:-someone else}', ${users} containers)"
  fi
fi
# The bridge's FORWARD guard goes with the bridge, not before.
if [[ ! -e "/sys/class/net/${BRIDGE}" ]]; then
  oomlab_as_root bash -c "source '${HACK_DIR}/lib.sh' && oomlab_kind_bridge_guard down '${BRIDGE}'"
fi

if [[ "${SWAP_OFF}" -eq 1 ]]; then
  oomlab_as_root "${HACK_DIR}/swap.sh" off
fi
# Last: the egress guard, only when no network of the project's is left.
oomlab_as_root "${HACK_DIR}/egress-guard.sh" down --if-idle
oomlab_log "kind cluster ${NAME} is down"
