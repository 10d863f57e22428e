#!/usr/bin/env bash
# The second LimitedSwap VM node: hack/vm-node.sh with an older kubelet (OOMLAB_OLD_KUBELET_VERSION,
# v1.34.4) on the same guest kernel and disk recipe as the first VM node (oomlab-vm, the cluster's
# own version), so one report compares two kubelet versions where nothing else differs.
#
#   hack/vm-node-old.sh up | down | status      as hack/vm-node.sh, for this node
#
# Why a second guest rather than re-joining oomlab-vm with the other kubelet: both versions are
# then in the cluster at once (`kubectl get nodes` shows them side by side, and one report or e2e
# run measures both), and the first VM node, which the e2e tier and the other experiments use,
# is never taken away. The cost is one more qemu guest under emulation (see README).
#
# The node: name oomlab-vm-1<minor> (oomlab-vm-134), 100.64.0.3 on the cluster's bridge through tap
# tap-oomlab-1<minor>, pods 100.64.2.0/24 routed via the guest (the egress guard allows tap-oomlab+
# and the route stays on oomlab0); one vCPU, so that it takes less of the two host cores. Its
# labels are the first VM node's plus oomlab.dev/kubelet-version, and it is tainted
# oomlab.dev/kubelet-version=<version>:NoSchedule: an experiment that asks only for LimitedSwap
# still lands on oomlab-vm, one that tolerates the taint and selects the label lands here. It
# applies no RuntimeClass (crun stays the first VM node's).
# Env: OOMLAB_OLD_KUBELET_VERSION, OOMLAB_VM_OLD_MEMORY (MiB, 1536), OOMLAB_VM_OLD_CPUS (1);
#      OOMLAB_VM_OLD_* for IP, pod subnet, MAC (defaults above).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/k8s-env.sh
source "${HACK_DIR}/k8s-env.sh"

minor="${OOMLAB_OLD_KUBELET_VERSION#v}"
minor="${minor%.*}"
minor="${minor//./}" # 1.34 -> 134

export OOMLAB_VM_NAME="oomlab-vm-${minor}"
export OOMLAB_VM_IP="${OOMLAB_VM_OLD_IP:-100.64.0.3}"
export OOMLAB_VM_POD_SUBNET="${OOMLAB_VM_OLD_POD_SUBNET:-100.64.2.0/24}"
export OOMLAB_VM_TAP="tap-oomlab-${minor}"
export OOMLAB_VM_MAC="${OOMLAB_VM_OLD_MAC:-52:54:00:64:00:03}"
export OOMLAB_VM_MEMORY="${OOMLAB_VM_OLD_MEMORY:-1536}"
export OOMLAB_VM_CPUS="${OOMLAB_VM_OLD_CPUS:-1}"
export OOMLAB_VM_STATE="${OOMLAB_STATE}/vm-node-old"
export OOMLAB_VM_TIMES_LOG="${OOMLAB_STATE}/vm-node-old-times.tsv"
export OOMLAB_VM_KUBELET="${OOMLAB_OLD_KUBELET_BIN}/kubelet"
export OOMLAB_VM_KUBELET_TAINT=1
export OOMLAB_VM_RUNTIMECLASSES=""

if [[ "${1:-}" == up && ! -x "${OOMLAB_VM_KUBELET}" ]]; then
  "${HACK_DIR}/k8s-build.sh" old-kubelet
fi
exec "${HACK_DIR}/vm-node.sh" "$@"
