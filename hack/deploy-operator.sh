#!/usr/bin/env bash
# Deploys the operator the way users do (kubectl apply -k manifests/) into the cluster at
# $KUBECONFIG (else the local cluster's) and waits for it to roll out. The Deployment's pod
# template carries the image ID of oomlab/operator:dev in the local Docker engine, so a rebuilt
# image (same tag) rolls the pod; unchanged, this is a no-op. The image must already be in the
# cluster (hack/cluster.sh up imports it; kind-up loads it).
# Env: OOMLAB_OPERATOR_IMAGE_ID (the image's ID where the engine does not have it, e.g. preloaded
#      in a kind node image), OOMLAB_OPERATOR_ROLLOUT_SECONDS (180; longer under emulation).
#
# Usage: hack/deploy-operator.sh
set -euo pipefail

# shellcheck source=hack/k8s-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s-env.sh"

NAMESPACE=oomlab-system
oomlab_use_cluster
kc() { "${KUBECTL}" "$@"; }

oomlab_run "${KUBECTL}" apply -k "${OOMLAB_REPO_ROOT}/manifests/" >&2
kc wait --for condition=Established --timeout=60s crd/oomexperiments.oomlab.dev >&2
image_id="${OOMLAB_OPERATOR_IMAGE_ID:-$(oomlab_docker image inspect --format '{{.Id}}' oomlab/operator:dev)}"
kc -n "${NAMESPACE}" patch deployment/oomlab-operator --type merge -p \
  "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"oomlab.dev/image-id\":\"${image_id}\"}}}}}" >&2
if ! kc -n "${NAMESPACE}" rollout status deployment/oomlab-operator \
  --timeout="${OOMLAB_OPERATOR_ROLLOUT_SECONDS:-180}s" >&2; then
  kc -n "${NAMESPACE}" describe pods -l app.kubernetes.io/component=operator >&2 || true
  kc -n "${NAMESPACE}" logs deployment/oomlab-operator --tail=50 >&2 || true
  oomlab_die "the operator did not become ready"
fi
oomlab_log "operator deployed (image ${image_id:7:12})"
