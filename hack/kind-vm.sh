#!/usr/bin/env bash
# kind with LimitedSwap for real: a kind cluster whose Docker engine runs in a cgroup v2 qemu guest
# of its own (this host is cgroup v1, where the kubelet refuses LimitedSwap). The guest boots the
# VM engine's image (hack/vm-engine-image.sh: Debian kernel, docker.io, a 2 GiB swapfile, THP
# madvise), read-only, through overlays; then hack/kind-up.sh --config limited-swap runs here
# against the guest's dockerd (DOCKER_HOST), with the oomlab/kind-node:<version>-preloaded image:
# oomlab/memhog:dev and oomlab/operator:dev are baked into its containerd store on this host
# (hack/kind-node-image.sh --preload, fast here), so no `kind load` runs in the guest.
#
#   hack/kind-vm.sh up [--swap SIZE]   boot the guest, create the cluster, load the images, deploy
#                                      the operator; print the kubeconfig path (swap default 2G)
#   hack/kind-vm.sh down               stop the guest (the cluster goes with it), remove its overlay
#   hack/kind-vm.sh status             what runs; exit 1 if the guest's dockerd does not answer
#   hack/kind-vm.sh key                the cache key of the guest's disk for the current inputs
#
# Speed (qemu TCG: `docker load` of the 1 GB node image alone took 318 s): the guest's disk with
# the node image already loaded in its Docker is cached as a qcow2 layer over the VM engine's
# disk, ${OOMLAB_CACHE}/kind-vm/<key>/disk.qcow2, <key> hashing the engine image's key and the
# node image archive's key (which covers the preloaded images' IDs); each run boots a throwaway
# overlay of it. kind's fixed 30 s wait for the node's systemd is lengthened by hack/kind-up.sh
# for a remote engine (hack/kind/docker-wait-boot.sh). Every step's time is printed and appended
# to ${OOMLAB_STATE}/kind-vm-times.tsv.
# Network: no tap. qemu's user-mode network with restrict=on (the guest sends nothing off the
# machine) and two forwards from this host's 127.0.0.1: the guest's dockerd (tcp 2375) and the API
# server, which the node publishes on the guest's port OOMLAB_KIND_VM_API_PORT. In the guest,
# dockerd has no default bridge; the `kind` network (100.80.0.0/16), pods (100.81.0.0/16) and
# services (100.82.0.0/16) are those of manifests/kind/limited-swap.yaml and hack/kind-up.sh.
# The cluster is named oomlab (kubeconfig context kind-oomlab, which the tests accept), in its own
# kubeconfig: ${OOMLAB_STATE}/kind-vm/kubeconfig.
# Needs: root, qemu (installed if missing), zstd, kind and kubectl (hack/k8s-build.sh kind k8s),
# and oomlab/memhog:dev and oomlab/operator:dev in this host's Docker engine (make images): `up`
# builds the preloaded node image archive from them (docker save) when its inputs changed.
# Env: OOMLAB_KIND_VM_MEMORY (MiB, 4096), OOMLAB_KIND_VM_CPUS (2), OOMLAB_KIND_VM_DOCKER_PORT
#      (23760), OOMLAB_KIND_VM_API_PORT (26443), OOMLAB_KIND_VM_DISK_SIZE (16G),
#      OOMLAB_KIND_VM_READY_SECONDS (900: dockerd, kind create's Ready node, the operator's
#      rollout), OOMLAB_DOCKER_LOCK (a lock file held around reading this host's engine, e.g.
#      /tmp/oomlab-live.lock; none by default: a caller already holding it would wait for itself).
set -euo pipefail

# shellcheck source=hack/k8s-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s-env.sh"

: "${OOMLAB_KIND_VM_MEMORY:=4096}"
: "${OOMLAB_KIND_VM_CPUS:=2}"
: "${OOMLAB_KIND_VM_DOCKER_PORT:=23760}"
: "${OOMLAB_KIND_VM_API_PORT:=26443}"
: "${OOMLAB_KIND_VM_DISK_SIZE:=16G}"
: "${OOMLAB_KIND_VM_READY_SECONDS:=900}"
: "${OOMLAB_KIND_VM_STATE:=${OOMLAB_STATE}/kind-vm}"
: "${OOMLAB_KIND_VM_CACHE:=${OOMLAB_CACHE}/kind-vm}"

NAME=oomlab
WORKLOAD_IMAGES=(oomlab/memhog:dev oomlab/operator:dev)
PRELOAD_ARGS=(--preload oomlab/memhog:dev --preload oomlab/operator:dev)
NODE_IMAGE="$(OOMLAB_KIND_NODE_IMAGE='' "${HACK_DIR}/kind-node-image.sh" --print-name "${PRELOAD_ARGS[@]}")"
NODE_ARCHIVE="${OOMLAB_CACHE}/kind-node/kind-node-${NODE_IMAGE##*:}.tar.zst"
NODE_ARCHIVE_KEY="${NODE_ARCHIVE%.tar.zst}.key"
PIDFILE="${OOMLAB_KIND_VM_STATE}/qemu.pid"
KUBECONFIG_OUT="${OOMLAB_KIND_VM_STATE}/kubeconfig"
TIMES_LOG="${OOMLAB_STATE}/kind-vm-times.tsv"
ADDRESS="tcp://127.0.0.1:${OOMLAB_KIND_VM_DOCKER_PORT}"

guest_docker() { DOCKER_HOST="${ADDRESS}" oomlab_docker "$@"; }
qemu_pid() { oomlab_qemu_pid "${PIDFILE}"; }

# A command as root in the guest's own namespaces: the guest has no shell access but its dockerd,
# so a privileged container of the node image enters PID 1's namespaces.
guest_root() {
  guest_docker run --rm --privileged --pid=host --network=host --entrypoint nsenter \
    "${NODE_IMAGE}" -t 1 -m -u -i -n -p -- "$@"
}

# Each step's time: said now, kept for the summary and the times log.
STEPS=()
timed() { # step command...
  local step="$1" start=${SECONDS}
  shift
  "$@"
  STEPS+=("$((SECONDS - start))"$'\t'"${step}")
  oomlab_log "time: ${step}: $((SECONDS - start)) s"
}

summary() { # outcome
  local line
  # kind-up's own steps, as it timed them (also when it failed half-way)
  if [[ -f "${OOMLAB_KIND_VM_STATE}/kind-up.log" ]]; then
    while IFS= read -r line; do STEPS+=("${line}"); done < <(
      sed -n 's/.*time: \(.*\): \([0-9]*\) s$/\2\t  kind-up: \1/p' "${OOMLAB_KIND_VM_STATE}/kind-up.log")
  fi
  oomlab_log "kind in the VM: $1; step times (s):"
  for line in "${STEPS[@]}"; do
    printf '  %5s  %s\n' "${line%%$'\t'*}" "${line#*$'\t'}" >&2
    printf '%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "${line#*$'\t'}" "${line%%$'\t'*}" >>"${TIMES_LOG}"
  done
}

# --- the guest ------------------------------------------------------------------------------------
start_qemu() { # engine-image-dir disk
  local net
  read -ra net <<<"$(oomlab_qemu_user_net "${OOMLAB_KIND_VM_DOCKER_PORT}:2375" \
    "${OOMLAB_KIND_VM_API_PORT}:${OOMLAB_KIND_VM_API_PORT}")"
  oomlab_log "the kind guest: dockerd at ${ADDRESS}, API server at 127.0.0.1:${OOMLAB_KIND_VM_API_PORT}"
  oomlab_qemu_start oomlab-kind-vm "$1" "$2" "${OOMLAB_KIND_VM_CPUS}" "${OOMLAB_KIND_VM_MEMORY}" \
    "${OOMLAB_KIND_VM_STATE}" "${net[@]}"
}

wait_engine() {
  oomlab_qemu_wait "${OOMLAB_KIND_VM_STATE}" "${OOMLAB_KIND_VM_READY_SECONDS}" "dockerd at ${ADDRESS}" \
    oomlab_engine_answers "${ADDRESS}"
}

# A clean shutdown, so that what the guest wrote is on its disk (needed before caching it).
poweroff_guest() {
  local pid i
  pid="$(qemu_pid)" || return 0
  guest_root sh -c 'sync && systemctl poweroff' >/dev/null 2>&1 || true
  for ((i = 0; i < 180; i++)); do
    [[ -d "/proc/${pid}" ]] || return 0
    sleep 1
  done
  return 1
}

stop_guest() {
  oomlab_qemu_stop "${PIDFILE}"
  rm -rf "${OOMLAB_KIND_VM_STATE}"
}

# --- the cached disk: the node image (workload images preloaded in it) in the guest's Docker -------
disk_key() { # engine-image-dir
  {
    basename "$1"
    printf '%s %s\n' "${NODE_IMAGE}" "$(cat "${NODE_ARCHIVE_KEY}")"
    printf '%s\n' "${OOMLAB_KIND_VM_DISK_SIZE}"
    sed -n '/^# --- the cached disk/,/^# --- end of the cached disk/p' "${BASH_SOURCE[0]}"
  } | sha256sum | cut -c1-16
}

seed_disk() { # engine-image-dir out-dir
  local image="$1" out="$2" tmp
  tmp="$(mktemp -d "${OOMLAB_KIND_VM_CACHE}/seed.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: tmp is local
  trap "oomlab_warn 'seeding the disk failed'; oomlab_qemu_stop '${PIDFILE}'; rm -rf '${tmp}'" EXIT
  oomlab_qemu_overlay "${image}/disk.raw" "${tmp}/disk.qcow2" "${OOMLAB_KIND_VM_DISK_SIZE}"
  start_qemu "${image}" "${tmp}/disk.qcow2"
  timed "seed: boot -> dockerd answers" wait_engine
  timed "seed: docker load ${NODE_IMAGE} ($(du -h "${NODE_ARCHIVE}" | cut -f1) zstd)" \
    bash -c "zstd -dc '${NODE_ARCHIVE}' | DOCKER_HOST='${ADDRESS}' '$(oomlab_docker_bin)' load -q >&2"
  # The image's root filesystem is 6G; the disk is bigger: grow it (online) to the disk's size.
  timed "seed: resize2fs /dev/vda" guest_root resize2fs /dev/vda >&2
  timed "seed: poweroff" poweroff_guest || oomlab_die "the guest did not power off: not caching its disk"
  {
    echo "engine image $(basename "${image}")"
    echo "node image ${NODE_IMAGE} (archive key $(cat "${NODE_ARCHIVE_KEY}"))"
    sed 's/^/preloaded in it: /' "${OOMLAB_CACHE}/kind-node/preload-${NODE_IMAGE##*:}.ids"
    echo "seeded $(date -u +%FT%TZ)"
  } >"${tmp}/inputs.txt"
  rm -rf "${out}"
  mkdir -p "$(dirname "${out}")"
  mv "${tmp}" "${out}"
  trap - EXIT
}
# --- end of the cached disk -------------------------------------------------------------------------

# The guest's swapfile at SIZE (the image makes 2G at boot).
set_swap() { # size
  local want have
  want="$(numfmt --from=iec "$1")"
  have="$(guest_root stat -c %s /swapfile 2>/dev/null || echo 0)"
  [[ "${have}" != "${want}" ]] || return 0
  oomlab_log "guest swap: /swapfile ${have} -> ${want} bytes"
  guest_root sh -c "swapoff /swapfile; rm -f /swapfile; /usr/local/sbin/oomlab-swap /swapfile $1" >&2
}

# hack/kind-up.sh against the guest's dockerd; its log kept in the state directory.
kind_up() {
  env DOCKER_HOST="${ADDRESS}" OOMLAB_KIND_WAIT="${OOMLAB_KIND_VM_READY_SECONDS}s" \
    OOMLAB_KIND_NODE_BOOT_SECONDS="${OOMLAB_KIND_VM_READY_SECONDS}" \
    OOMLAB_OPERATOR_ROLLOUT_SECONDS="${OOMLAB_KIND_VM_READY_SECONDS}" OOMLAB_KIND_NODE_IMAGE="${NODE_IMAGE}" \
    "${HACK_DIR}/kind-up.sh" --config limited-swap --name "${NAME}" --no-build \
    --kubeconfig "${KUBECONFIG_OUT}" --api-server-port "${OOMLAB_KIND_VM_API_PORT}" \
    2>&1 >/dev/null | tee "${OOMLAB_KIND_VM_STATE}/kind-up.log" >&2
}

cmd_up() {
  local swap=2G
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;; # --option=value: as --option value
      --swap) swap="${2:?--swap needs a size, e.g. 2G}"; shift 2 ;;
      *) oomlab_die "unknown argument: $1" ;;
    esac
  done
  oomlab_need_root "boots a VM"
  oomlab_apt_install qemu-system-x86 qemu-utils zstd
  local image
  if qemu_pid >/dev/null; then
    oomlab_log "the kind guest already runs (qemu pid $(qemu_pid)): reusing it"
  else
    local key disk
    timed "node image ${NODE_IMAGE} with ${WORKLOAD_IMAGES[*]} (on this host)" \
      "${HACK_DIR}/kind-node-image.sh" --no-load "${PRELOAD_ARGS[@]}" >&2
    image="$("${HACK_DIR}/vm-engine-image.sh" build)"
    key="$(disk_key "${image}")"
    disk="${OOMLAB_KIND_VM_CACHE}/${key}"
    stop_guest # a previous run's leftovers
    if [[ -s "${disk}/disk.qcow2" ]]; then
      oomlab_log "cached guest disk ${disk} ($(grep -c . "${disk}/inputs.txt") inputs, images already loaded)"
    else
      oomlab_log "seeding the guest disk ${disk}: the images go into the guest's Docker once"
      mkdir -p "${OOMLAB_KIND_VM_CACHE}"
      seed_disk "${image}" "${disk}"
    fi
    trap 'oomlab_warn "up failed: stopping the kind guest"; summary failed; stop_guest' EXIT
    mkdir -p "${OOMLAB_KIND_VM_STATE}"
    echo "${disk}" >"${OOMLAB_KIND_VM_STATE}/disk"
    oomlab_qemu_overlay "${disk}/disk.qcow2" "${OOMLAB_KIND_VM_STATE}/overlay.qcow2"
    start_qemu "${image}" "${OOMLAB_KIND_VM_STATE}/overlay.qcow2"
    timed "boot -> dockerd answers" wait_engine
  fi
  trap 'oomlab_warn "up failed: stopping the kind guest"; summary failed; stop_guest' EXIT
  set_swap "${swap}"
  # shellcheck disable=SC2016  # a Go template
  oomlab_log "guest engine: $(guest_docker info --format 'Docker {{.ServerVersion}}, cgroup v{{.CgroupVersion}} ({{.CgroupDriver}}), {{.MemTotal}} B of memory'), swap $(guest_root swapon --show=SIZE --noheadings --bytes | head -n1) B"
  timed "hack/kind-up.sh --config limited-swap, in all" kind_up
  trap - EXIT
  summary "up"
  printf '%s\n' "${KUBECONFIG_OUT}"
}

cmd_down() {
  stop_guest
  oomlab_log "kind guest down"
}

cmd_status() {
  oomlab_qemu_status "${OOMLAB_KIND_VM_STATE}" disk || true
  if ! oomlab_engine_answers "${ADDRESS}"; then
    echo "engine          no answer at ${ADDRESS}"
    return 1
  fi
  # shellcheck disable=SC2016  # a Go template
  echo "engine          ${ADDRESS}: $(guest_docker info --format 'Docker {{.ServerVersion}}, cgroup v{{.CgroupVersion}}')"
  local kind kubectl
  if kind="$(oomlab_kind_bin)"; then
    echo "kind clusters   $(DOCKER_HOST="${ADDRESS}" "${kind}" get clusters 2>/dev/null | tr '\n' ' ')"
  fi
  if kubectl="$(oomlab_kubectl_bin)" && [[ -f "${KUBECONFIG_OUT}" ]]; then
    echo "nodes           (KUBECONFIG=${KUBECONFIG_OUT})"
    "${kubectl}" --kubeconfig "${KUBECONFIG_OUT}" get nodes -L oomlab.dev/swap-behavior \
      -L oomlab.dev/cgroup-version -L oomlab.dev/thp 2>&1 | sed 's/^/                /'
  fi
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  key) disk_key "$("${HACK_DIR}/vm-engine-image.sh" build)" ;;
  *) sed -n '8,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
