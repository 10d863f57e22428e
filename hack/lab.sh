#!/usr/bin/env bash
# The Kubernetes lab, on a cluster that is already up (`make lab` brings it up first):
#   1. deploys the operator (hack/deploy-operator.sh);
#   2. applies the samples afresh (kubectl apply -k manifests/samples/, after deleting earlier
#      runs of them: an experiment's spec cannot change, so each lab run starts new ones), plus
#      the two LimitedSwap seeds (Burstable and Guaranteed) when a LimitedSwap node is Ready;
#   3. runs `oomlab parity NAME` for each sample that names Docker flags (spec.docker): the same
#      workload under those flags on the local Docker engine;
#   4. waits until every sample is terminal (and Docker's observation is folded in), then prints
#      `kubectl get oomx`.
#
# Usage: hack/lab.sh
# Env: KUBECONFIG (default: the local cluster's), OOMLAB_LAB_NAMESPACE (default: default),
#      OOMLAB_CLI (default: .venv/bin/oomlab, else oomlab on PATH), OOMLAB_LAB_TIMEOUT (600 s).
set -euo pipefail

# shellcheck source=hack/k8s-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s-env.sh"

NAMESPACE="${OOMLAB_LAB_NAMESPACE:-default}"
TIMEOUT="${OOMLAB_LAB_TIMEOUT:-600}"
SAMPLES="${OOMLAB_REPO_ROOT}/manifests/samples/"
TERMINAL="Completed OOMKilled Failed TimedOut Invalid"

oomlab_use_cluster
if [[ -n "${OOMLAB_CLI:-}" ]]; then
  CLI="${OOMLAB_CLI}"
elif [[ -x "${OOMLAB_REPO_ROOT}/.venv/bin/oomlab" ]]; then
  CLI="${OOMLAB_REPO_ROOT}/.venv/bin/oomlab"
else
  CLI="$(command -v oomlab)" || oomlab_die "no oomlab CLI: run make venv"
fi
kc() { "${KUBECTL}" -n "${NAMESPACE}" "$@"; }

# Where the samples come from: the default set (every one finishes on a single NoSwap node), plus
# the LimitedSwap seeds when the cluster has a Ready LimitedSwap node (hack/vm-node.sh).
SOURCES=("-k ${SAMPLES}")
limited_swap_ready="$("${KUBECTL}" get nodes -l oomlab.dev/swap-behavior=LimitedSwap \
  -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')"
if [[ "${limited_swap_ready}" == *True* ]]; then
  SOURCES+=("-f ${SAMPLES}seed-limited-swap.yaml" "-f ${SAMPLES}seed-limited-swap-guaranteed.yaml")
fi

each_source() { # kubectl-args... : runs `kc ARGS <source>` for every source
  local source
  for source in "${SOURCES[@]}"; do
    # shellcheck disable=SC2086  # split on purpose: "-k DIR" or "-f FILE" (no spaces in paths)
    kc "$@" ${source}
  done
}

# name phase docker-source, one line per sample experiment (custom columns: `get -f FILE` is one
# object, not a List, so a jsonpath over .items would list nothing for it)
samples_state() {
  each_source get --no-headers \
    -o custom-columns=NAME:.metadata.name,PHASE:.status.phase,SOURCE:.status.docker.source
}

all_terminal() {
  local name phase _source
  while read -r name phase _source; do
    [[ " ${TERMINAL} " == *" ${phase:-none} "* ]] || return 1
  done < <(samples_state)
}

docker_observed() { # names...
  local name phase source
  while read -r name phase source; do
    [[ " $* " == *" ${name} "* && "${source,,}" != observed ]] && return 1
  done < <(samples_state)
  return 0
}

"${HACK_DIR}/deploy-operator.sh"

oomlab_log "lab: applying the samples in namespace ${NAMESPACE} (earlier runs of them deleted first)"
each_source delete --ignore-not-found --wait=true >&2
each_source apply >&2

mapfile -t with_docker < <(each_source get --no-headers \
  -o custom-columns=NAME:.metadata.name,DOCKER:.spec.docker.memory | awk '$2 != "<none>" { print $1 }')
for name in "${with_docker[@]}"; do
  oomlab_log "lab: oomlab parity ${name} (its spec.docker flags on the local Docker engine)"
  "${CLI}" parity "${name}" -n "${NAMESPACE}" >&2
done

oomlab_log "lab: waiting for every sample to finish (at most ${TIMEOUT}s)"
oomlab_wait_for "${TIMEOUT}" "every sample to be terminal" all_terminal || {
  kc get oomx >&2
  oomlab_die "not every sample finished within ${TIMEOUT}s"
}
# The operator folds the Docker observations in; give it a moment if it has not yet.
oomlab_wait_for 60 "Docker observations in the samples' status" docker_observed "${with_docker[@]}" || true
kc get oomx
