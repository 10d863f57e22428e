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
# hashes this script, the guest files (hack/vm-engine/rootfs plus the node's initramfs settings
# and swapfile unit, shared) and the package list. A run boots a qcow2 overlay of disk.raw.
# The workload image is not baked in: hack/vm-engine.sh loads it through the engine's API.
# Env: OOMLAB_VM_ENGINE_DISK_SIZE (6G, sparse), OOMLAB_DEBIAN_MIRROR.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

: "${OOMLAB_VM_ENGINE_CACHE:=${OOMLAB_CACHE}/vm-engine}"
: "${OOMLAB_VM_ENGINE_DISK_SIZE:=6G}"
: "${OOMLAB_DEBIAN_SECURITY_MIRROR:=http://deb.debian.org/debian-security}"

SUITE=bookworm
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
MASKED_UNITS=(serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service
              e2scrub_reap.service e2scrub_all.timer fstrim.timer apt-daily.timer
              apt-daily-upgrade.timer dpkg-db-backup.timer systemd-networkd-wait-online.service
              systemd-timesyncd.service)
KERNEL_CMDLINE="console=ttyS0 root=/dev/vda rw quiet net.ifnames=0 fsck.mode=skip transparent_hugepage=madvise"

image_key() {
  {
    printf '%s\n' "${SUITE}" "${BOOTSTRAP_PACKAGES[*]}" "${PACKAGES[*]}" "${KERNEL_CMDLINE}"
    printf '%s\n' "${ENABLED_UNITS[*]}" "${MASKED_UNITS[*]}" "${OOMLAB_VM_ENGINE_DISK_SIZE}"
    sha256sum "${BASH_SOURCE[0]}" | awk '{ print $1 }'
    (cd "${NODE_FILES}" && sha256sum "${SHARED_FILES[@]}")
    (cd "${ENGINE_FILES}" && find . -type f | sort | xargs sha256sum)
  } | sha256sum | cut -c1-16
}

# Unmounts what is mounted under $1 (deepest first), then removes it.
remove_tree() { # dir
  local dir="$1" m
  [[ -e "${dir}" ]] || return 0
  while read -r m; do
    umount "${m}" 2>/dev/null || umount -l "${m}"
  done < <(findmnt -rn -o TARGET | grep -E "^${dir}(/|$)" | sort -r)
  [[ -z "$(findmnt -rn -o TARGET | grep -E "^${dir}(/|$)" || true)" ]] ||
    oomlab_die "still mounted under ${dir}: not removing it"
  rm -rf "${dir}"
}

build() { # key out-dir
  local key="$1" out="$2" tmp mirror start=${SECONDS}
  oomlab_apt_install debootstrap e2fsprogs
  mirror="${OOMLAB_DEBIAN_MIRROR:-$(oomlab_debian_mirror)}"
  tmp="$(mktemp -d "${OOMLAB_VM_ENGINE_CACHE}/build.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: tmp is local
  trap "remove_tree '${tmp}'" EXIT
  local root="${tmp}/root" file
  mkdir -p "${tmp}/out"
  oomlab_log "VM engine image ${key}: debootstrap ${SUITE} minbase from ${mirror}"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${BOOTSTRAP_PACKAGES[*]}")" \
    "${SUITE}" "${root}" "${mirror}" >"${tmp}/debootstrap.log" 2>&1 || {
      tail -n 30 "${tmp}/debootstrap.log" >&2
      oomlab_die "debootstrap failed"
    }
  cat >"${root}/etc/apt/sources.list" <<SOURCES
deb ${mirror} ${SUITE} main
deb ${mirror} ${SUITE}-updates main
deb ${OOMLAB_DEBIAN_SECURITY_MIRROR} ${SUITE}-security main
SOURCES
  printf '#!/bin/sh\n# Build time: start no service in the chroot.\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
  chmod 755 "${root}/usr/sbin/policy-rc.d"
  for file in "${SHARED_FILES[@]}"; do
    # The build resolves the mirror with the host's resolv.conf; the guest's goes in after apt.
    [[ "${file}" != etc/resolv.conf ]] || continue
    install -D --preserve-timestamps -m "$(stat -c %a "${NODE_FILES}/${file}")" "${NODE_FILES}/${file}" "${root}/${file}"
  done
  cp -r --preserve=mode "${ENGINE_FILES}/." "${root}/"
  mount -t proc proc "${root}/proc"
  oomlab_log "apt-get install ${PACKAGES[*]} (in the chroot)"
  local apt=(chroot "${root}" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
             apt-get -o Acquire::Retries=3 -o APT::Install-Recommends=false)
  { "${apt[@]}" update && "${apt[@]}" install -y "${PACKAGES[@]}"; } >"${tmp}/apt.log" 2>&1 || {
    tail -n 40 "${tmp}/apt.log" >&2
    oomlab_die "apt-get in the guest chroot failed"
  }
  umount "${root}/proc"
  rm -f "${root}/usr/sbin/policy-rc.d"
  # This guest resolves nothing.
  install -m 644 "${NODE_FILES}/etc/resolv.conf" "${root}/etc/resolv.conf"
  rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/* "${root}"/usr/share/doc/* \
    "${root}"/usr/share/man/*
  local said unit
  said="$(chroot "${root}" systemctl enable "${ENABLED_UNITS[@]}" 2>&1)" || {
    printf '%s\n' "${said}" >&2
    oomlab_die "systemctl enable in the guest tree failed"
  }
  for unit in "${MASKED_UNITS[@]}"; do ln -sfn /dev/null "${root}/etc/systemd/system/${unit}"; done
  cp "${root}"/boot/vmlinuz-* "${tmp}/out/vmlinuz"
  cp "${root}"/boot/initrd.img-* "${tmp}/out/initrd.img"
  printf '%s\n' "${KERNEL_CMDLINE}" >"${tmp}/out/cmdline"
  oomlab_log "mkfs.ext4 -d (${OOMLAB_VM_ENGINE_DISK_SIZE}, sparse)"
  mkfs.ext4 -q -F -L oomlab-root -d "${root}" "${tmp}/out/disk.raw" "${OOMLAB_VM_ENGINE_DISK_SIZE}" >&2
  {
    echo "key ${key}"
    echo "kernel $(basename "$(ls "${root}"/boot/vmlinuz-*)")"
    # shellcheck disable=SC2016  # ${Package} is dpkg-query's format, not the shell's
    echo "packages $(chroot "${root}" dpkg-query -W -f='${Package}=${Version} ' docker.io containerd runc crun podman conmon linux-image-amd64)"
    echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s"
  } >"${tmp}/out/inputs.txt"
  rm -rf "${out}"
  mv "${tmp}/out" "${out}"
  remove_tree "${tmp}"
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
  if [[ -s "${out}/disk.raw" && -s "${out}/inputs.txt" ]]; then
    oomlab_log "VM engine image ${key} is up to date (${out})"
    echo "${out}"
    return
  fi
  oomlab_need_root "runs debootstrap, chroot and mkfs"
  mkdir -p "${OOMLAB_VM_ENGINE_CACHE}"
  exec 8>"${OOMLAB_VM_ENGINE_CACHE}/.lock"
  flock 8
  if [[ ! -s "${out}/disk.raw" ]]; then
    build "${key}" "${out}"
  fi
  echo "${out}"
}

main "$@"
