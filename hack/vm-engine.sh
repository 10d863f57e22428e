#!/usr/bin/env bash
# Cgroup v2 container engines for the experiments: Docker (Debian's docker.io) and podman 4.3,
# each with runc and crun, in a qemu guest with a 2 GiB swapfile and THP madvise, so that
# `oomlab docker run --engine docker@vm` (or `podman@vm`) measures cgroup v2 swap (this host is
# cgroup v1). Not a Kubernetes node (that is hack/vm-node.sh); the two can run side by side.
#
#   hack/vm-engine.sh up       build the image if needed (hack/vm-engine-image.sh), boot it, wait
#                              for dockerd and podman, load the workload image into both; print
#                              the export lines
#   hack/vm-engine.sh down     stop the guest and remove its overlay
#   hack/vm-engine.sh status   what runs; exit 1 if the engine does not answer
#
# Network: no tap. qemu's user-mode network with restrict=on (the guest can send nothing off the
# machine) and three forwards from the host's 127.0.0.1: OOMLAB_VM_ENGINE_PORT -> dockerd's tcp
# 2375 in the guest, OOMLAB_VM_ENGINE_PODMAN_PORT -> podman's API service with crun (tcp 8888),
# OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT -> the one with runc (tcp 8889; a podman service runs every
# container with its own runtime). `OOMLAB_ENGINE_VM=tcp://127.0.0.1:PORT` makes `--engine
# docker@vm` reach dockerd, `OOMLAB_ENGINE_PODMAN_VM=crun=tcp://...,runc=tcp://...` podman@vm.
# Env: OOMLAB_VM_ENGINE_PORT (23750), OOMLAB_VM_ENGINE_PODMAN_PORT (23751),
#      OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT (23752), OOMLAB_VM_ENGINE_MEMORY (MiB, 2048),
#      OOMLAB_VM_ENGINE_CPUS (2), OOMLAB_VM_ENGINE_READY_SECONDS (600), OOMLAB_VM_MEMHOG_IMAGE (oomlab/memhog:dev: from
#      the host's Docker engine, else from ${OOMLAB_CACHE}/images/memhog-dev-vm-engine.tar).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

: "${OOMLAB_VM_ENGINE_PORT:=23750}"
: "${OOMLAB_VM_ENGINE_PODMAN_PORT:=23751}"
: "${OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT:=23752}"
: "${OOMLAB_VM_ENGINE_MEMORY:=2048}"
: "${OOMLAB_VM_ENGINE_CPUS:=2}"
: "${OOMLAB_VM_ENGINE_READY_SECONDS:=600}"
: "${OOMLAB_VM_MEMHOG_IMAGE:=oomlab/memhog:dev}"
: "${OOMLAB_VM_ENGINE_STATE:=${OOMLAB_STATE}/vm-engine}"
: "${OOMLAB_VM_ENGINE_IMAGE_TAR:=${OOMLAB_CACHE}/images/memhog-dev-vm-engine.tar}"

PIDFILE="${OOMLAB_VM_ENGINE_STATE}/qemu.pid"
# One line per `up`: UTC time, seconds from qemu start to dockerd answering, accelerator.
TIMES_LOG="${OOMLAB_STATE}/vm-engine-times.tsv"
ADDRESS="tcp://127.0.0.1:${OOMLAB_VM_ENGINE_PORT}"
PODMAN_ADDRESS="tcp://127.0.0.1:${OOMLAB_VM_ENGINE_PODMAN_PORT}"
PODMAN_RUNC_ADDRESS="tcp://127.0.0.1:${OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT}"

guest_docker() { DOCKER_HOST="${ADDRESS}" oomlab_docker "$@"; }
# podman's Docker-compatible API: the docker CLI loads and inspects images in podman's store.
guest_podman() { DOCKER_HOST="${PODMAN_ADDRESS}" oomlab_docker "$@"; }

qemu_pid() { oomlab_qemu_pid "${PIDFILE}"; }

start_qemu() { # image-dir
  local net
  read -ra net <<<"$(oomlab_qemu_user_net "${OOMLAB_VM_ENGINE_PORT}:2375" \
    "${OOMLAB_VM_ENGINE_PODMAN_PORT}:8888" "${OOMLAB_VM_ENGINE_PODMAN_RUNC_PORT}:8889")"
  oomlab_log "the VM engine: dockerd at ${ADDRESS}, podman at ${PODMAN_ADDRESS} (crun), ${PODMAN_RUNC_ADDRESS} (runc)"
  oomlab_qemu_start oomlab-vm-engine "$1" "${OOMLAB_VM_ENGINE_STATE}/overlay.qcow2" \
    "${OOMLAB_VM_ENGINE_CPUS}" "${OOMLAB_VM_ENGINE_MEMORY}" "${OOMLAB_VM_ENGINE_STATE}" "${net[@]}"
}

wait_engine() { # started-at (seconds since epoch)
  local start="$1" podman
  oomlab_log "waiting for dockerd in the guest (up to ${OOMLAB_VM_ENGINE_READY_SECONDS} s)"
  oomlab_qemu_wait "${OOMLAB_VM_ENGINE_STATE}" "${OOMLAB_VM_ENGINE_READY_SECONDS}" "dockerd at ${ADDRESS}" \
    oomlab_engine_answers "${ADDRESS}"
  local took=$(($(date +%s) - start))
  printf '%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "${took}" "$(oomlab_qemu_accel_args)" >>"${TIMES_LOG}"
  oomlab_log "dockerd in the guest answers ${took} s after qemu started"
  for podman in "${PODMAN_ADDRESS}" "${PODMAN_RUNC_ADDRESS}"; do
    oomlab_qemu_wait "${OOMLAB_VM_ENGINE_STATE}" 120 "podman's API at ${podman}" oomlab_engine_answers "${podman}"
  done
}

image_id() { # docker-cli-function image
  "$1" image inspect --format '{{.Id}}' "$2" 2>/dev/null | sed 's/^sha256://'
}

# Loads the workload image into one of the guest's engines unless it holds the host's build of
# it already (same image ID): a stale copy under the same name would run an older workload.
load_workload_image() { # guest-engine-function (guest_docker or guest_podman)
  local engine="$1" want have
  want="$(image_id oomlab_docker "${OOMLAB_VM_MEMHOG_IMAGE}" || true)"
  have="$(image_id "${engine}" "${OOMLAB_VM_MEMHOG_IMAGE}" || true)"
  if [[ -n "${have}" && ( -z "${want}" || "${have}" == "${want}" ) ]]; then return; fi
  if [[ -n "${want}" ]]; then
    oomlab_log "loading ${OOMLAB_VM_MEMHOG_IMAGE} (${want:0:12}) into the guest's ${engine#guest_} (it held: ${have:-nothing})"
    oomlab_docker save "${OOMLAB_VM_MEMHOG_IMAGE}" | "${engine}" load >&2
  elif [[ -s "${OOMLAB_VM_ENGINE_IMAGE_TAR}" ]]; then
    oomlab_log "loading ${OOMLAB_VM_ENGINE_IMAGE_TAR} into the guest's ${engine#guest_} (the host's engine is not up)"
    "${engine}" load -i "${OOMLAB_VM_ENGINE_IMAGE_TAR}" >&2
  else
    oomlab_die "${OOMLAB_VM_MEMHOG_IMAGE} is in neither the host's engine nor ${OOMLAB_VM_ENGINE_IMAGE_TAR}: run 'make images'"
  fi
  have="$(image_id "${engine}" "${OOMLAB_VM_MEMHOG_IMAGE}" || true)"
  [[ -n "${have}" && ( -z "${want}" || "${have}" == "${want}" ) ]] ||
    oomlab_die "the guest's ${engine#guest_} holds ${OOMLAB_VM_MEMHOG_IMAGE} as ${have:-nothing}, not the host's ${want}"
}

load_workload_images() { load_workload_image guest_docker; load_workload_image guest_podman; }

print_export() {
  echo "export OOMLAB_ENGINE_VM=${ADDRESS}"
  echo "export OOMLAB_ENGINE_PODMAN_VM=crun=${PODMAN_ADDRESS},runc=${PODMAN_RUNC_ADDRESS}"
}

cmd_up() {
  oomlab_need_root "boots a VM"
  oomlab_apt_install qemu-system-x86 qemu-utils
  if qemu_pid >/dev/null; then
    oomlab_log "the VM engine already runs (qemu pid $(qemu_pid))"
    wait_engine "$(stat -c %Y "${PIDFILE}")"
    load_workload_images
    print_export
    return
  fi
  local image start
  image="$("${HACK_DIR}/vm-engine-image.sh" build)"
  cmd_down # a previous run's leftovers
  # From here on, a failure removes what this run made.
  trap 'oomlab_warn "up failed: stopping the VM engine"; cmd_down' EXIT
  mkdir -p "${OOMLAB_VM_ENGINE_STATE}"
  echo "${image}" >"${OOMLAB_VM_ENGINE_STATE}/image"
  oomlab_qemu_overlay "${image}/disk.raw" "${OOMLAB_VM_ENGINE_STATE}/overlay.qcow2"
  start="$(date +%s)"
  start_qemu "${image}"
  wait_engine "${start}"
  load_workload_images
  trap - EXIT
  print_export
}

cmd_down() {
  trap - EXIT
  oomlab_qemu_stop "${PIDFILE}"
  rm -rf "${OOMLAB_VM_ENGINE_STATE}"
}

cmd_status() {
  oomlab_qemu_status "${OOMLAB_VM_ENGINE_STATE}" image || true
  [[ -f "${TIMES_LOG}" ]] && echo "last up         $(tail -n1 "${TIMES_LOG}" | cut -f2) s from qemu start to dockerd answering"
  if oomlab_engine_answers "${ADDRESS}"; then
    # shellcheck disable=SC2016  # a Go template, not the shell's
    echo "engine          ${ADDRESS}: $(guest_docker info --format 'Docker {{.ServerVersion}}, cgroup v{{.CgroupVersion}}, runtimes {{range $k, $v := .Runtimes}}{{$k}} {{end}}')"
  else
    echo "engine          no answer at ${ADDRESS}"
    return 1
  fi
  if oomlab_engine_answers "${PODMAN_ADDRESS}" && oomlab_engine_answers "${PODMAN_RUNC_ADDRESS}"; then
    echo "podman          ${PODMAN_ADDRESS} (crun), ${PODMAN_RUNC_ADDRESS} (runc): $(guest_podman version --format 'podman {{.Server.Version}}')"
    print_export
  else
    echo "podman          no answer at ${PODMAN_ADDRESS} or ${PODMAN_RUNC_ADDRESS}"
    return 1
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) sed -n '7,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
