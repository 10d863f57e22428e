#!/usr/bin/env bash
# A second node for the local cluster (hack/local-cluster.sh): a qemu guest with cgroup v2, a
# 2 GiB swapfile and the kubelet in LimitedSwap mode, so that Kubernetes swap is measured for
# real (this host is cgroup v1, where the kubelet gives no swap at all).
#
#   hack/vm-node.sh up       build the image if needed (hack/vm-image.sh), boot it, wait until
#                            the node is Ready; a failed `up` removes what it made
#   hack/vm-node.sh down     stop the guest, remove its tap, route, disks and Node object
#   hack/vm-node.sh status   what runs; exit 1 if the guest does not
#
# The node: name oomlab-vm, labels oomlab.dev/swap-behavior=LimitedSwap,
# oomlab.dev/node-pressure=allowed (node-scale experiments may fill it; the host's node never has
# it), oomlab.dev/eviction-hard-memory (its kubelet's evictionHard memory.available),
# oomlab.dev/reclaim-memory-available (the memory.available at which its kernel starts swapping,
# measured for the default 1536 MiB guest; see reclaim_point below),
# oomlab.dev/cgroup-version and oomlab.dev/thp (both read from the guest kernel), taint
# oomlab.dev/swap=LimitedSwap:NoSchedule (only pods that tolerate it land there). RuntimeClass
# `crun` (manifests/cluster/vm-runtimeclasses.yaml) runs only there; `runc` runs on both nodes.
# Network (every address in 100.64.0.0/10; the guest has no default route): tap tap-oomlab-vm on
# the cluster's bridge oomlab0, guest 100.64.0.2/24, its pods 100.64.1.0/24 with a host route
# via the guest. The host's egress guard (hack/egress-guard.sh) is put up before any of it.
# qemu: KVM where /proc/cpuinfo has vmx/svm, else TCG (software emulation, several times slower).
# Each run boots a qcow2 overlay of the cached image plus a small config disk (node certificates
# signed by the cluster CA, kubelet config, network files), so the cached image stays clean.
# qemu is started and waited for with hack/lib/qemu.sh.
# Env: OOMLAB_VM_MEMORY (MiB, 1536), OOMLAB_VM_CPUS (2), OOMLAB_VM_READY_SECONDS (600),
#      OOMLAB_VM_DEBUG=1 (the guest's journal on its serial log, ${OOMLAB_STATE}/vm-node-serial.log,
#      which `down` keeps; ${OOMLAB_STATE}/vm-node-times.tsv has the start-to-Ready times), and
#      the local cluster's OOMLAB_BRIDGE / OOMLAB_NODE_IP / OOMLAB_API_PORT / OOMLAB_CLUSTER_STATE.
# A second VM node is this script with other OOMLAB_VM_* settings (hack/vm-node-old.sh: name, IP,
# tap, MAC, pod subnet, state directory, OOMLAB_VM_KUBELET for an older kubelet). Every VM node is
# labelled oomlab.dev/kubelet-version (the image's kubelet); OOMLAB_VM_KUBELET_TAINT=1 also taints
# it oomlab.dev/kubelet-version=<version>:NoSchedule, so that only experiments that ask for that
# kubelet land there. OOMLAB_VM_RUNTIMECLASSES (the file below; empty: none) is applied on `up`
# and deleted on `down`: only the first VM node owns them.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/k8s-env.sh
source "${HACK_DIR}/k8s-env.sh"

: "${OOMLAB_VM_NAME:=oomlab-vm}"
: "${OOMLAB_VM_IP:=100.64.0.2}"
: "${OOMLAB_VM_POD_SUBNET:=100.64.1.0/24}"
: "${OOMLAB_VM_TAP:=tap-oomlab-vm}"
: "${OOMLAB_VM_MAC:=52:54:00:64:00:02}"
: "${OOMLAB_VM_MEMORY:=1536}"
: "${OOMLAB_VM_CPUS:=2}"
: "${OOMLAB_VM_READY_SECONDS:=600}"
: "${OOMLAB_VM_STATE:=${OOMLAB_STATE}/vm-node}"
: "${OOMLAB_VM_KUBELET_TAINT:=0}"
: "${OOMLAB_VM_RUNTIMECLASSES=${OOMLAB_REPO_ROOT}/manifests/cluster/vm-runtimeclasses.yaml}"
# One line per `up` (for benchmarks): UTC time, seconds from qemu start to node Ready, accelerator.
: "${OOMLAB_VM_TIMES_LOG:=${OOMLAB_STATE}/vm-node-times.tsv}"
# The local cluster's settings (same defaults as hack/local-cluster.sh).
: "${OOMLAB_CLUSTER_STATE:=${OOMLAB_STATE}/cluster}"
: "${OOMLAB_BRIDGE:=oomlab0}"
: "${OOMLAB_NODE_IP:=100.64.0.1}"
: "${OOMLAB_BRIDGE_PREFIX:=24}"
: "${OOMLAB_API_PORT:=6443}"

PKI="${OOMLAB_CLUSTER_STATE}/pki"
KUBECONFIG_ADMIN="${OOMLAB_CLUSTER_STATE}/kubeconfig"
RUNTIMECLASSES="${OOMLAB_VM_RUNTIMECLASSES}"
PIDFILE="${OOMLAB_VM_STATE}/qemu.pid"
TIMES_LOG="${OOMLAB_VM_TIMES_LOG}"

kubectl_admin() { "${OOMLAB_K8S_BIN}/kubectl" --kubeconfig "${KUBECONFIG_ADMIN}" "$@"; }

qemu_pid() { oomlab_qemu_pid "${PIDFILE}"; } # the guest's qemu, if it runs

api_up() { kubectl_admin get --raw /readyz >/dev/null 2>&1; }

node_ready() {
  [[ "$(kubectl_admin get node "${OOMLAB_VM_NAME}" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# ---------------------------------------------------------------------------------------------
# the per-run config disk

sign_cert() { # dir name subject eku [subjectAltName]
  local dir="$1" name="$2" subj="$3" eku="$4" san="${5:-}"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=${eku}"
    [[ -z "${san}" ]] || echo "subjectAltName=${san}"
  } >"${dir}/${name}.ext"
  openssl req -new -nodes -newkey rsa:2048 -keyout "${dir}/${name}.key" -out "${dir}/${name}.csr" \
    -subj "${subj}" 2>/dev/null
  openssl x509 -req -sha256 -days 30 -in "${dir}/${name}.csr" -CA "${PKI}/ca.crt" -CAkey "${PKI}/ca.key" \
    -CAcreateserial -CAserial "${dir}/ca.srl" -out "${dir}/${name}.crt" -extfile "${dir}/${name}.ext" 2>/dev/null
  rm -f "${dir}/${name}.csr" "${dir}/${name}.ext"
  chmod 600 "${dir}/${name}.key"
}

# memory.available (as the kubelet computes it) at which the guest's kernel starts moving
# anonymous memory to swap, measured on a 1536 MiB guest (2026-12-03, a 10 MiB/0.5 s leak with
# no limit): kswapd wakes when free memory falls to the zones' low watermark (55 MiB:
# min_free_kbytes is 45056 here, raised by THP's khugepaged, and watermark_scale_factor 10 puts
# low at 1.25 x min), reclaims inactive file pages down to about 45 MiB, then swaps anon while
# MemFree + Inactive(file) stays at 100-125 MiB; the kubelet's memory.available is about 70 MiB
# higher (kernel memory its root working set does not count), 178-190 MiB. Other guest sizes
# have other watermarks: no label (the operator then takes the point as unknown).
reclaim_point() {
  [[ "${OOMLAB_VM_MEMORY}" == 1536 ]] && echo 180Mi
  return 0
}

# The kubelet version the image was built with (hack/vm-image.sh writes it in inputs.txt).
image_kubelet_version() { # image-dir
  awk '$1 == "kubelet" { print $3 }' "$1/inputs.txt"
}

write_config_disk() { # config-img image-dir
  local cfg="${OOMLAB_VM_STATE}/config" kubelet_version
  kubelet_version="$(image_kubelet_version "$2")"
  [[ -n "${kubelet_version}" ]] || oomlab_die "$2/inputs.txt names no kubelet version"
  rm -rf "${cfg}"
  mkdir -p "${cfg}/pki" "${cfg}/network" "${cfg}/net.d"
  cp "${PKI}/ca.crt" "${cfg}/pki/ca.crt"
  sign_cert "${cfg}/pki" kubelet-client "/O=system:nodes/CN=system:node:${OOMLAB_VM_NAME}" clientAuth
  sign_cert "${cfg}/pki" kubelet-server "/CN=${OOMLAB_VM_NAME}" serverAuth \
    "IP:${OOMLAB_VM_IP},DNS:${OOMLAB_VM_NAME}"
  rm -f "${cfg}/pki/ca.srl"
  # Paths as the guest sees the config disk (mounted at /etc/oomlab).
  local kc=("${OOMLAB_K8S_BIN}/kubectl" config --kubeconfig "${cfg}/kubelet.kubeconfig") user="system:node:${OOMLAB_VM_NAME}"
  "${kc[@]}" set-cluster oomlab --server "https://${OOMLAB_NODE_IP}:${OOMLAB_API_PORT}" \
    --certificate-authority /etc/oomlab/pki/ca.crt >/dev/null
  "${kc[@]}" set-credentials "${user}" --client-certificate /etc/oomlab/pki/kubelet-client.crt \
    --client-key /etc/oomlab/pki/kubelet-client.key >/dev/null
  "${kc[@]}" set-context oomlab --cluster oomlab --user "${user}" >/dev/null
  "${kc[@]}" use-context oomlab >/dev/null
  sed "s/@NODE_IP@/${OOMLAB_VM_IP}/g" "${HACK_DIR}/vm/kubelet-config.yaml" >"${cfg}/kubelet-config.yaml"
  if [[ "${OOMLAB_VM_KUBELET_TAINT}" == 1 ]]; then
    sed -i "/^registerWithTaints:/a - {key: oomlab.dev/kubelet-version, value: ${kubelet_version}, effect: NoSchedule}" \
      "${cfg}/kubelet-config.yaml"
  fi
  local labels reclaim
  labels="oomlab.dev/swap-behavior=LimitedSwap,oomlab.dev/kubelet-version=${kubelet_version}"
  labels+=",oomlab.dev/node-pressure=allowed,oomlab.dev/eviction-hard-memory=100Mi"
  reclaim="$(reclaim_point)"
  [[ -z "${reclaim}" ]] || labels+=",oomlab.dev/reclaim-memory-available=${reclaim}"
  cat >"${cfg}/kubelet.env" <<EOF
NODE_NAME=${OOMLAB_VM_NAME}
NODE_IP=${OOMLAB_VM_IP}
NODE_LABELS=${labels}
EOF
  # No Gateway: the guest can reach the cluster's bridge and nothing else.
  cat >"${cfg}/network/10-eth0.network" <<EOF
[Match]
Name=eth0

[Network]
Address=${OOMLAB_VM_IP}/${OOMLAB_BRIDGE_PREFIX}
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
  cat >"${cfg}/net.d/10-pods.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "oomlab-vm",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "${OOMLAB_VM_POD_SUBNET}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
  # Pods resolve nothing: there is no cluster DNS, and nothing outside to ask.
  printf 'nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n' >"${cfg}/resolv.conf"
  mkfs.ext4 -q -F -L oomlab-config -d "${cfg}" "$1" 16M >&2
}

# ---------------------------------------------------------------------------------------------

check_prerequisites() {
  oomlab_need_root "creates a tap device, routes and a VM"
  local x
  for x in "${OOMLAB_VM_IP}" "${OOMLAB_VM_POD_SUBNET}" "${OOMLAB_NODE_IP}"; do
    oomlab_in_shared_range "${x}" || oomlab_die "${x} is outside 100.64.0.0/10; pick addresses in that range"
  done
  if [[ ! -f "${PKI}/ca.key" ]] || ! api_up; then
    oomlab_die "the local cluster is not up (no API server at ${OOMLAB_NODE_IP}): run 'make cluster-up' first"
  fi
  ip link show "${OOMLAB_BRIDGE}" >/dev/null 2>&1 || oomlab_die "no bridge ${OOMLAB_BRIDGE}: is the local cluster up?"
  oomlab_apt_install qemu-system-x86 qemu-utils openssl e2fsprogs iproute2
}

ensure_egress_guard() {
  if [[ -x "${HACK_DIR}/egress-guard.sh" ]]; then
    "${HACK_DIR}/egress-guard.sh" up
  fi
  local chain
  for chain in OUTPUT FORWARD; do
    # grep reads everything: with pipefail an early exit would fail the pipe
    iptables -S "${chain}" | grep -- '-j OOMLAB-EGRESS' >/dev/null ||
      oomlab_die "the egress guard (hack/egress-guard.sh) is not in ${chain}: no tap without it"
  done
}

start_qemu() { # image-dir
  oomlab_qemu_start "${OOMLAB_VM_NAME}" "$1" "${OOMLAB_VM_STATE}/overlay.qcow2" "${OOMLAB_VM_CPUS}" \
    "${OOMLAB_VM_MEMORY}" "${OOMLAB_VM_STATE}" \
    -drive "file=${OOMLAB_VM_STATE}/config.img,if=virtio,format=raw,readonly=on" \
    -netdev "tap,id=net0,ifname=${OOMLAB_VM_TAP},script=no,downscript=no" \
    -device "virtio-net-pci,netdev=net0,mac=${OOMLAB_VM_MAC}"
}

wait_ready() { # started-at (seconds since epoch) [record: 1 = log the time for benchmarks]
  local start="$1" record="${2:-0}"
  oomlab_log "waiting for node ${OOMLAB_VM_NAME} to be Ready (up to ${OOMLAB_VM_READY_SECONDS} s)"
  oomlab_qemu_wait "${OOMLAB_VM_STATE}" "${OOMLAB_VM_READY_SECONDS}" "Ready node ${OOMLAB_VM_NAME}" node_ready
  local took=$(($(date +%s) - start))
  ((record == 0)) || printf '%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "${took}" "$(oomlab_qemu_accel_args)" >>"${TIMES_LOG}"
  oomlab_log "node ${OOMLAB_VM_NAME} Ready ${took} s after qemu started"
}

cmd_up() {
  check_prerequisites
  if qemu_pid >/dev/null; then
    oomlab_log "the VM node already runs (qemu pid $(qemu_pid))"
    wait_ready "$(stat -c %Y "${PIDFILE}")"
    return
  fi
  ensure_egress_guard
  local image
  image="$("${HACK_DIR}/vm-image.sh" build)"
  # From here on, a failure removes what this run made.
  trap 'oomlab_warn "up failed: removing the VM node"; cmd_down' EXIT
  cmd_down_quiet
  mkdir -p "${OOMLAB_VM_STATE}"
  echo "${image}" >"${OOMLAB_VM_STATE}/image"
  write_config_disk "${OOMLAB_VM_STATE}/config.img" "${image}"
  oomlab_qemu_overlay "${image}/disk.raw" "${OOMLAB_VM_STATE}/overlay.qcow2"
  oomlab_log "network: ${OOMLAB_VM_TAP} on ${OOMLAB_BRIDGE}; route ${OOMLAB_VM_POD_SUBNET} via ${OOMLAB_VM_IP}"
  ip tuntap add dev "${OOMLAB_VM_TAP}" mode tap
  ip link set "${OOMLAB_VM_TAP}" master "${OOMLAB_BRIDGE}" up
  ip route replace "${OOMLAB_VM_POD_SUBNET}" via "${OOMLAB_VM_IP}" dev "${OOMLAB_BRIDGE}"
  local start
  start="$(date +%s)"
  start_qemu "${image}"
  wait_ready "${start}" 1
  [[ -z "${RUNTIMECLASSES}" ]] || kubectl_admin apply -f "${RUNTIMECLASSES}" >&2
  trap - EXIT
  kubectl_admin get node "${OOMLAB_VM_NAME}" -o wide >&2
}

# Stops and removes everything but the Node object (a previous run's leftovers, before `up`).
cmd_down_quiet() {
  # A signal, not the monitor's system_powerdown (which left the guest running for minutes).
  oomlab_qemu_stop "${PIDFILE}"
  if [[ -n "$(ip route show "${OOMLAB_VM_POD_SUBNET}" 2>/dev/null)" ]]; then
    ip route del "${OOMLAB_VM_POD_SUBNET}" 2>/dev/null || true
  fi
  if ip link show "${OOMLAB_VM_TAP}" >/dev/null 2>&1; then
    oomlab_log "deleting ${OOMLAB_VM_TAP}"
    ip link del "${OOMLAB_VM_TAP}"
  fi
  rm -rf "${OOMLAB_VM_STATE}"
}

cmd_down() {
  trap - EXIT
  oomlab_need_root "removes a tap device, routes and a VM"
  cmd_down_quiet
  if [[ -x "${OOMLAB_K8S_BIN}/kubectl" ]] && api_up; then
    if kubectl_admin get node "${OOMLAB_VM_NAME}" >/dev/null 2>&1; then
      oomlab_log "deleting node ${OOMLAB_VM_NAME} and its pods"
      kubectl_admin delete pods --all-namespaces --field-selector "spec.nodeName=${OOMLAB_VM_NAME}" \
        --force --grace-period=0 >/dev/null 2>&1 || true
      kubectl_admin delete node "${OOMLAB_VM_NAME}" --wait=false >&2
    fi
    [[ -z "${RUNTIMECLASSES}" ]] || kubectl_admin delete -f "${RUNTIMECLASSES}" --ignore-not-found >&2
  fi
  oomlab_log "VM node down"
}

cmd_status() {
  local rc=0
  oomlab_qemu_status "${OOMLAB_VM_STATE}" image || rc=1
  if ip link show "${OOMLAB_VM_TAP}" >/dev/null 2>&1; then
    echo "tap             ${OOMLAB_VM_TAP} on $(ip -o link show "${OOMLAB_VM_TAP}" | sed -n 's/.* master \([^ ]*\).*/\1/p')"
  else
    echo "tap             absent"
  fi
  echo "route           $(ip route show "${OOMLAB_VM_POD_SUBNET}" 2>/dev/null | head -n1 || true)"
  [[ -f "${TIMES_LOG}" ]] && echo "last up         $(tail -n1 "${TIMES_LOG}" | cut -f2) s from qemu start to node Ready"
  if [[ -x "${OOMLAB_K8S_BIN}/kubectl" ]] && api_up; then
    kubectl_admin get node "${OOMLAB_VM_NAME}" -o wide --show-labels 2>/dev/null ||
      echo "node            ${OOMLAB_VM_NAME} not registered"
  fi
  return "${rc}"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
