# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
# Pinned versions and cache paths shared by hack/k8s-build.sh and hack/local-cluster.sh.
# Source it; it defines variables and small helpers and runs nothing (it sources hack/lib.sh).
# Every pin can be overridden from the environment.

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${OOMLAB_CACHE:=/var/cache/oomlab}"
: "${OOMLAB_K8S_VERSION:=v1.37.2}"  # v1.34.4 is also supported: set it to build and run that
: "${OOMLAB_ETCD_VERSION:=v3.6.16}"
# The kubelet of the second LimitedSwap VM node (hack/vm-node-old.sh): an older kubelet on the
# same guest kernel, so one report compares two kubelet versions. Only its kubelet is built.
: "${OOMLAB_OLD_KUBELET_VERSION:=v1.34.4}"
: "${OOMLAB_KIND_VERSION:=v0.33.0}"
: "${OOMLAB_ACTIONLINT_VERSION:=v1.7.12}"
# For the offline kind node image (hack/kind-node-image.sh), per Kubernetes minor: CoreDNS as that
# kubeadm lists it (cmd/kubeadm/app/constants CoreDNSVersion), crictl of the same minor.
case "${OOMLAB_K8S_VERSION}" in
  v1.34.*) : "${OOMLAB_COREDNS_VERSION:=v1.12.1}" "${OOMLAB_CRICTL_VERSION:=v1.34.0}" ;;
  v1.37.*) : "${OOMLAB_COREDNS_VERSION:=v1.14.6}" "${OOMLAB_CRICTL_VERSION:=v1.37.0}" ;;
  *) : "${OOMLAB_COREDNS_VERSION:=unpinned}" "${OOMLAB_CRICTL_VERSION:=unpinned}" ;;
esac

# Kubernetes binaries built by hack/k8s-build.sh (kube-proxy is used by the local cluster).
OOMLAB_K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

OOMLAB_K8S_BIN="${OOMLAB_CACHE}/bin/k8s-${OOMLAB_K8S_VERSION}"
OOMLAB_OLD_KUBELET_BIN="${OOMLAB_CACHE}/bin/k8s-${OOMLAB_OLD_KUBELET_VERSION}"
OOMLAB_ETCD_BIN="${OOMLAB_CACHE}/bin/etcd-${OOMLAB_ETCD_VERSION}"
OOMLAB_KIND_BIN="${OOMLAB_CACHE}/bin/kind-${OOMLAB_KIND_VERSION}"
OOMLAB_ACTIONLINT_BIN="${OOMLAB_CACHE}/bin/actionlint-${OOMLAB_ACTIONLINT_VERSION}"
OOMLAB_COREDNS_BIN="${OOMLAB_CACHE}/bin/coredns-${OOMLAB_COREDNS_VERSION}"
OOMLAB_CRICTL_BIN="${OOMLAB_CACHE}/bin/crictl-${OOMLAB_CRICTL_VERSION}"

# Go keeps everything it downloads and compiles under the cache, so a later run reuses it.
oomlab_go_env() {
  export GOPATH="${OOMLAB_CACHE}/go/path"
  export GOMODCACHE="${OOMLAB_CACHE}/go/mod"
  export GOCACHE="${OOMLAB_CACHE}/go/build-cache"
  export GOTOOLCHAIN=local
  export GOFLAGS="-mod=mod -buildvcs=false"
  export CGO_ENABLED=0
}
