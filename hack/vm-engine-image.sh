#!/usr/bin/env bash
# Builds the boot files and disk of oomlab's VM *engine* (hack/vm-engine.sh runs it): a Debian
# bookworm guest with Debian's kernel (cgroup v2), docker.io (dockerd, containerd, runc),
# podman 4.3 (API services on tcp 8888 with crun, 8889 with runc) and crun, a 2 GiB swapfile and
# THP madvise, like the VM node but with no kubelet. The node's image
# (hack/vm-image.sh) is not touched: this one has its own cache directory and key.
#
#   hack/vm-engine-image.sh [build]   build unless cached; print the image directory on stdout
#   hack/vm-engine-image.sh key       print the cache key of the current inputs
#
# Output: ${OOMLAB_CACHE}/vm-engine/<key>/{vmlinuz,initrd.img,disk.raw,cmdline,inputs.txt}; <key>
# hashes this script, hack/lib/rootfs.sh (debootstrap, chroot apt, the disk), the guest files
# (hack/vm-engine/rootfs plus the node's initramfs settings and swapfile unit, shared) and the
# package list. A run boots a qcow2 overlay of disk.raw.
# The workload image is not baked in: hack/vm-engine.sh loads it through the engine's API.
# Env: OOMLAB_VM_ENGINE_DISK_SIZE (6G, sparse), OOMLAB_DEBIAN_MIRROR.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

: "${OOMLAB_VM_ENGINE_CACHE:=${OOMLAB_CACHE}/vm-engine}"
: "${OOMLAB_VM_ENGINE_DISK_SIZE:=6G}"

ENGINE_FILES="${HACK_DIR}/vm-engine/rootfs"
NODE_FILES="${HACK_DIR}/vm/rootfs"
# Shared with the VM node: the small initramfs, the swapfile unit and its script, no DNS.
SHARED_FILES=(etc/initramfs-tools/conf.d/oomlab.conf etc/initramfs-tools/modules
              etc/systemd/system/oomlab-swap.service usr/local/sbin/oomlab-swap etc/resolv.conf)
BOOTSTRAP_PACKAGES=(systemd-sysv udev kmod iproute2)
# apparmor: docker.io recommends it, and dockerd refuses to start containers on a kernel with
# AppArmor on (Debian's default) without apparmor_parser.
PACKAGES=(linux-image-amd64 docker.io podman apparmor crun ca-certificates dbus)
ENABLED_UNITS=(systemd-networkd.service containerd.service docker.service dbus.service
               oomlab-swap.service oomlab-podman-api.service oomlab-podman-api-runc.service)

image_key() {
  {
    printf '%s\n' "${OOMLAB_DEBIAN_SUITE}" "${BOOTSTRAP_PACKAGES[*]}" "${PACKAGES[*]}" "${OOMLAB_GUEST_CMDLINE}"
    printf '%s\n' "${ENABLED_UNITS[*]}" "${OOMLAB_GUEST_MASKED_UNITS[*]}" "${OOMLAB_VM_ENGINE_DISK_SIZE}"
    sha256sum "${BASH_SOURCE[0]}" | awk '{ print $1 }'
    oomlab_lib_sums rootfs.sh
    (cd "${NODE_FILES}" && sha256sum "${SHARED_FILES[@]}")
    (cd "${ENGINE_FILES}" && find . -type f | sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
}

build() { # key out-dir
  local key="$1" out="$2" tmp start=${SECONDS}
  oomlab_apt_install e2fsprogs
  tmp="$(mktemp -d "${OOMLAB_VM_ENGINE_CACHE}/build.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: tmp is local
  trap "oomlab_remove_tree '${tmp}'" EXIT
  local root="${tmp}/root" file
  mkdir -p "${tmp}/out"
  oomlab_log "VM engine image ${key}"
  oomlab_debootstrap "${root}" "${BOOTSTRAP_PACKAGES[@]}"
  for file in "${SHARED_FILES[@]}"; do
    # The build resolves the mirror with the host's resolv.conf; the guest's goes in after apt.
    [[ "${file}" != etc/resolv.conf ]] || continue
    install -D --preserve-timestamps -m "$(stat -c %a "${NODE_FILES}/${file}")" "${NODE_FILES}/${file}" "${root}/${file}"
  done
  cp -r --preserve=mode "${ENGINE_FILES}/." "${root}/"
  oomlab_chroot_apt "${root}" "${PACKAGES[@]}"
  # This guest resolves nothing.
  install -m 644 "${NODE_FILES}/etc/resolv.conf" "${root}/etc/resolv.conf"
  oomlab_rootfs_trim "${root}"
  oomlab_guest_units "${root}" enable "${ENABLED_UNITS[@]}"
  oomlab_guest_units "${root}" mask "${OOMLAB_GUEST_MASKED_UNITS[@]}"
  oomlab_guest_disk "${root}" "${tmp}/out" "${OOMLAB_GUEST_CMDLINE}" "${OOMLAB_VM_ENGINE_DISK_SIZE}"
  {
    echo "key ${key}"
    echo "kernel $(basename "$(ls "${root}"/boot/vmlinuz-*)")"
    # shellcheck disable=SC2016  # ${Package} is dpkg-query's format, not the shell's
    echo "packages $(chroot "${root}" dpkg-query -W -f='${Package}=${Version} ' docker.io containerd runc crun podman conmon linux-image-amd64)"
    echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s"
  } >"${tmp}/out/inputs.txt"
  rm -rf "${out}"
  mv "${tmp}/out" "${out}"
  oomlab_remove_tree "${tmp}"
  trap - EXIT
  oomlab_log "VM engine image ${out} in $((SECONDS - start)) s"
}

main() {
  local cmd="${1:-build}" key out
  case "${cmd}" in
    build | key) ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  key="$(image_key)"
  if [[ "${cmd}" == key ]]; then echo "${key}"; return; fi
  out="${OOMLAB_VM_ENGINE_CACHE}/${key}"
  oomlab_guest_image_built "${out}" && return
  oomlab_need_root "runs debootstrap, chroot and mkfs"
  mkdir -p "${OOMLAB_VM_ENGINE_CACHE}"
  # One build at a time per cache.
  exec 8>"${OOMLAB_VM_ENGINE_CACHE}/.lock"
  flock 8
  if ! oomlab_guest_image_built "${out}"; then
    build "${key}" "${out}"
    echo "${out}"
  fi
}

main "$@"
