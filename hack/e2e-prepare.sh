#!/usr/bin/env bash
# Prepares the cluster at $KUBECONFIG for the e2e tiers: installs the CRD (the in-process operator
# tier needs it) and scales any deployed oomlab operator to zero, so that tier's own operator is
# the only one handling experiments. tests/e2e then deploys the operator with kubectl apply -k,
# which scales it back to one replica.
set -euo pipefail

# shellcheck source=hack/k8s-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s-env.sh"

kubectl_bin="$(oomlab_kubectl_bin || true)"
[[ -n "${kubectl_bin}" ]] || oomlab_die "no kubectl: run hack/k8s-build.sh or install one"

# The tiers scale, restart and apply things: only in the project's own clusters (the same rule as
# tests/lab.py), unless told otherwise.
cluster="$("${kubectl_bin}" config view --minify -o jsonpath='{.contexts[0].context.cluster}')"
if [[ "${cluster}" != oomlab && "${cluster}" != kind-oomlab && "${OOMLAB_ALLOW_FOREIGN_CLUSTER:-}" != 1 ]]; then
  oomlab_die "the kubeconfig's current cluster is '${cluster}', not the project's (oomlab, kind-oomlab): set OOMLAB_ALLOW_FOREIGN_CLUSTER=1 to use it"
fi

oomlab_log "installing the OOMExperiment CRD"
"${kubectl_bin}" apply -f "${OOMLAB_REPO_ROOT}/manifests/crd/" >&2
"${kubectl_bin}" wait --for=condition=Established crd/oomexperiments.oomlab.dev --timeout=60s >&2

if "${kubectl_bin}" -n oomlab-system get deployment oomlab-operator >/dev/null 2>&1; then
  oomlab_log "scaling the deployed operator to zero for the in-process operator tier"
  "${kubectl_bin}" -n oomlab-system scale deployment oomlab-operator --replicas=0 >&2
  "${kubectl_bin}" -n oomlab-system wait --for=delete pod \
    -l app.kubernetes.io/component=operator --timeout=120s >&2 || true
fi
