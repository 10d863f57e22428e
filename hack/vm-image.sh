#!/usr/bin/env bash
# Builds the boot files and disk of oomlab's VM node (hack/vm-node.sh runs it): a Debian bookworm
# guest with Debian's kernel (cgroup v2), containerd, runc, crun and CNI plugins, the project's
# kubelet, and the pause and memhog images already in containerd's store (no registry, no import
# at boot). Guest files live in hack/vm/rootfs/ and are copied in as they are.
#
#   hack/vm-image.sh [build]   build unless cached; print the image directory on stdout
#   hack/vm-image.sh key       print the cache key of the current inputs
#   hack/vm-image.sh rootfs    build only stage 1 (below); needs no Docker engine or kubelet
#
# Output: ${OOMLAB_CACHE}/vm/<key>/{vmlinuz,initrd.img,disk.raw,cmdline,inputs.txt} where <key>
# hashes every input (this script, hack/vm/rootfs, the package list, the kubelet binary, the
# image IDs). A run never writes to disk.raw: hack/vm-node.sh boots a qcow2 overlay of it.
# Two stages, so that a new kubelet or memhog image costs about a minute, not a debootstrap:
#   1. rootfs-<key1>.tar: debootstrap minbase + the packages (apt in a chroot, services held
#      back by a policy-rc.d that exits 101); key1 = suite, packages, initramfs settings.
#   2. the disk: that tree + hack/vm/rootfs + kubelet + images (imported by a temporary
#      containerd whose root is the guest's /var/lib/containerd), then mkfs.ext4 -d.
# Env: OOMLAB_VM_MEMHOG_IMAGE (oomlab/memhog:dev, from the local Docker engine),
#      OOMLAB_VM_DISK_SIZE (6G, sparse), OOMLAB_VM_KUBELET (the one hack/k8s-build.sh builds),
#      OOMLAB_DEBIAN_MIRROR, OOMLAB_VM_KEEP (2: older images are pruned after a build).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/k8s-env.sh
source "${HACK_DIR}/k8s-env.sh"

: "${OOMLAB_VM_CACHE:=${OOMLAB_CACHE}/vm}"
: "${OOMLAB_VM_MEMHOG_IMAGE:=oomlab/memhog:dev}"
: "${OOMLAB_VM_DISK_SIZE:=6G}"
: "${OOMLAB_VM_KUBELET:=${OOMLAB_K8S_BIN}/kubelet}"
: "${OOMLAB_DEBIAN_SECURITY_MIRROR:=http://deb.debian.org/debian-security}"
: "${OOMLAB_VM_KEEP:=2}"   # disk images (about 1 GB each) and root filesystems kept in the cache

GUEST_FILES="${HACK_DIR}/vm/rootfs"
SUITE=bookworm
# Stage-1 recipe version: bump it when the way the root filesystem is made changes.
ROOTFS_RECIPE=1
BOOTSTRAP_PACKAGES=(systemd-sysv udev kmod iproute2)
PACKAGES=(linux-image-amd64 containerd runc crun containernetworking-plugins iptables
          ca-certificates dbus)
# Must equal sandbox_image in hack/vm/rootfs/etc/containerd/config.toml.
PAUSE_IMAGE=localhost/oomlab-pause:1
ENABLED_UNITS=(systemd-networkd.service containerd.service dbus.service oomlab-config.service
               oomlab-swap.service kubelet.service)
# A getty fights other writers on the serial console; the rest only slow a boot under emulation
# or have no work to do in a throwaway guest.
MASKED_UNITS=(serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service
              e2scrub_reap.service e2scrub_all.timer fstrim.timer apt-daily.timer
              apt-daily-upgrade.timer dpkg-db-backup.timer systemd-networkd-wait-online.service
              systemd-timesyncd.service)
# THP is set deliberately (FACTS: with `always`, swapped pages were charged again and pods died
# early); the kubelet's oomlab.dev/thp label reads the mode back from the kernel.
KERNEL_CMDLINE="console=ttyS0 root=/dev/vda rw quiet net.ifnames=0 fsck.mode=skip transparent_hugepage=madvise"

sha() { sha256sum | cut -c1-16; }
docker_() { oomlab_docker "$@"; }

stage1_key() {
  {
    printf '%s\n' "recipe ${ROOTFS_RECIPE}" "${SUITE}" "${BOOTSTRAP_PACKAGES[*]}" "${PACKAGES[*]}"
    (cd "${GUEST_FILES}" && find etc/initramfs-tools -type f | sort | xargs sha256sum)
  } | sha
}

memhog_image_id() {
  docker_ image inspect --format '{{.Id}}' "${OOMLAB_VM_MEMHOG_IMAGE}" 2>/dev/null ||
    oomlab_die "${OOMLAB_VM_MEMHOG_IMAGE} is not in the local Docker engine: run 'make images' first"
}

# The stage-2 key: everything that ends up in the disk or on the kernel command line.
image_key() { # memhog-image-id
  {
    printf '%s\n' "rootfs $(stage1_key)" "memhog $1" "pause ${PAUSE_IMAGE}" "cmdline ${KERNEL_CMDLINE}"
    printf '%s\n' "enabled ${ENABLED_UNITS[*]}" "masked ${MASKED_UNITS[*]}" "size ${OOMLAB_VM_DISK_SIZE}"
    sha256sum "${BASH_SOURCE[0]}" "${OOMLAB_VM_KUBELET}" "${OOMLAB_REPO_ROOT}/hack/pause/pause.c" |
      awk '{ print $1 }'
    (cd "${GUEST_FILES}" && find . -type f | sort | xargs sha256sum)
  } | sha
}

# Everything mounted under $1 is unmounted (deepest first); then $1 is removed. Refuses to
# remove a tree that still has a mount in it (a bound /dev or /proc would take the host's along).
remove_tree() { # dir
  local dir="$1" m
  [[ -e "${dir}" ]] || return 0
  while read -r m; do
    umount "${m}" 2>/dev/null || umount -l "${m}"
  done < <(findmnt -rn -o TARGET | grep -E "^${dir}(/|$)" | sort -r)
  if [[ -n "$(findmnt -rn -o TARGET | grep -E "^${dir}(/|$)" || true)" ]]; then
    oomlab_die "still mounted under ${dir}: not removing it"
  fi
  rm -rf "${dir}"
}

build_rootfs() { # key1 tarball
  local key="$1" tarball="$2" tmp mirror start=${SECONDS}
  oomlab_apt_install debootstrap
  mirror="${OOMLAB_DEBIAN_MIRROR:-$(oomlab_debian_mirror)}"
  tmp="$(mktemp -d "${OOMLAB_VM_CACHE}/rootfs.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: tmp is local
  trap "remove_tree '${tmp}'" EXIT
  local root="${tmp}/root"
  oomlab_log "stage 1 (${key}): debootstrap ${SUITE} minbase + ${BOOTSTRAP_PACKAGES[*]} from ${mirror}"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${BOOTSTRAP_PACKAGES[*]}")" \
    "${SUITE}" "${root}" "${mirror}" >"${tmp}/debootstrap.log" 2>&1 || {
      tail -n 30 "${tmp}/debootstrap.log" >&2
      oomlab_die "debootstrap failed"
    }
  oomlab_log "stage 1: debootstrap took $((SECONDS - start)) s"
  cat >"${root}/etc/apt/sources.list" <<EOF
deb ${mirror} ${SUITE} main
deb ${mirror} ${SUITE}-updates main
deb ${OOMLAB_DEBIAN_SECURITY_MIRROR} ${SUITE}-security main
EOF
  printf '#!/bin/sh\n# Build time: start no service in the chroot.\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
  chmod 755 "${root}/usr/sbin/policy-rc.d"
  # The initramfs settings must be in place before the kernel package builds the initramfs.
  cp -r "${GUEST_FILES}/etc/initramfs-tools/." "${root}/etc/initramfs-tools/"
  mount -t proc proc "${root}/proc"
  oomlab_log "stage 1: apt-get install ${PACKAGES[*]} (in the chroot)"
  local apt=(chroot "${root}" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
             apt-get -o Acquire::Retries=3 -o APT::Install-Recommends=false)
  { "${apt[@]}" update && "${apt[@]}" install -y "${PACKAGES[@]}"; } >"${tmp}/apt.log" 2>&1 || {
    tail -n 40 "${tmp}/apt.log" >&2
    oomlab_die "apt-get in the guest chroot failed"
  }
  umount "${root}/proc"
  rm -f "${root}/usr/sbin/policy-rc.d"
  (
    cd "${root}"
    rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* \
      usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* var/log/*.log
  )
  tar --numeric-owner --xattrs --xattrs-include='*' -C "${root}" -cf "${tarball}.part" .
  mv "${tarball}.part" "${tarball}"
  remove_tree "${tmp}"
  trap - EXIT
  oomlab_log "stage 1: root filesystem ${tarball} ($(du -h "${tarball}" | cut -f1)) in $((SECONDS - start)) s"
}

# A containerd of the host, for as long as the import takes, whose root is the guest's
# /var/lib/containerd: the images land unpacked in the guest's store, ready for its CRI.
preload_images() { # root work-dir
  local root="$1" work="$2" sock pid
  sock="${work}/containerd.sock"
  cat >"${work}/containerd.toml" <<EOF
version = 2
root = "${root}/var/lib/containerd"
state = "${work}/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${sock}"
[plugins."io.containerd.internal.v1.opt"]
  path = "${work}/containerd-opt"
EOF
  containerd --config "${work}/containerd.toml" >"${work}/containerd.log" 2>&1 &
  pid=$!
  local i
  for ((i = 0; i < 100; i++)); do
    ctr --address "${sock}" version >/dev/null 2>&1 && break
    kill -0 "${pid}" 2>/dev/null || { tail -n 20 "${work}/containerd.log" >&2; oomlab_die "build containerd exited"; }
    sleep 0.2
  done
  local ctr_=(ctr --address "${sock}" --namespace k8s.io)
  oomlab_log "stage 2: importing ${PAUSE_IMAGE} (built from hack/pause/pause.c)"
  oomlab_pause_image_tar "${work}/pause.tar" "${PAUSE_IMAGE}"
  "${ctr_[@]}" images import "${work}/pause.tar" >&2
  oomlab_log "stage 2: importing ${OOMLAB_VM_MEMHOG_IMAGE} (docker save | ctr import)"
  docker_ save "${OOMLAB_VM_MEMHOG_IMAGE}" | "${ctr_[@]}" images import - >&2
  "${ctr_[@]}" images ls -q >&2
  kill -TERM "${pid}"
  wait "${pid}" || true
}

build_disk() { # key out-dir memhog-id
  local key="$1" out="$2" memhog_id="$3" tarball tmp start=${SECONDS}
  tarball="$(ensure_rootfs)"
  local t2=${SECONDS}
  tmp="$(mktemp -d "${OOMLAB_VM_CACHE}/disk.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: tmp is local
  trap "remove_tree '${tmp}'" EXIT
  local root="${tmp}/root"
  mkdir -p "${root}" "${tmp}/out"
  oomlab_log "stage 2 (${key}): unpacking the root filesystem"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "${root}" -xf "${tarball}"
  cp -r --preserve=mode "${GUEST_FILES}/." "${root}/"
  install -m 755 "${OOMLAB_VM_KUBELET}" "${root}/usr/local/bin/kubelet"
  local said
  said="$(chroot "${root}" systemctl enable "${ENABLED_UNITS[@]}" 2>&1)" || {
    printf '%s\n' "${said}" >&2
    oomlab_die "systemctl enable in the guest tree failed"
  }
  local unit
  for unit in "${MASKED_UNITS[@]}"; do ln -sfn /dev/null "${root}/etc/systemd/system/${unit}"; done
  preload_images "${root}" "${tmp}"
  cp "${root}"/boot/vmlinuz-* "${tmp}/out/vmlinuz"
  cp "${root}"/boot/initrd.img-* "${tmp}/out/initrd.img"
  printf '%s\n' "${KERNEL_CMDLINE}" >"${tmp}/out/cmdline"
  oomlab_log "stage 2: mkfs.ext4 -d (${OOMLAB_VM_DISK_SIZE}, sparse)"
  mkfs.ext4 -q -F -L oomlab-root -d "${root}" "${tmp}/out/disk.raw" "${OOMLAB_VM_DISK_SIZE}" >&2
  {
    echo "key ${key}"
    echo "rootfs ${tarball}"
    echo "kubelet $("${OOMLAB_VM_KUBELET}" --version 2>/dev/null) $(sha256sum "${OOMLAB_VM_KUBELET}" | cut -c1-16)"
    echo "memhog ${OOMLAB_VM_MEMHOG_IMAGE} ${memhog_id}"
    echo "kernel $(basename "$(ls "${root}"/boot/vmlinuz-*)")"
    # shellcheck disable=SC2016  # ${Package} is dpkg-query's format, not the shell's
    echo "packages $(chroot "${root}" dpkg-query -W -f='${Package}=${Version} ' "${PACKAGES[@]}")"
    echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s (stage 2: $((SECONDS - t2)) s)"
  } >"${tmp}/out/inputs.txt"
  rm -rf "${out}"
  mv "${tmp}/out" "${out}"
  remove_tree "${tmp}"
  trap - EXIT
  oomlab_log "stage 2: ${out} in $((SECONDS - t2)) s; whole build $((SECONDS - start)) s"
}

ensure_rootfs() { # prints the stage-1 tarball
  local key1 tarball
  key1="$(stage1_key)"
  tarball="${OOMLAB_VM_CACHE}/rootfs-${SUITE}-${key1}.tar"
  if [[ -s "${tarball}" ]]; then
    oomlab_log "stage 1: using the cached root filesystem ${tarball}"
  else
    build_rootfs "${key1}" "${tarball}"
  fi
  echo "${tarball}"
}

# Keeps the newest OOMLAB_VM_KEEP disk images and root filesystems, and the image a running VM
# node boots from (hack/vm-node.sh records it).
prune_cache() {
  local in_use old
  in_use="$(cat "${OOMLAB_STATE}/vm-node/image" 2>/dev/null || true)"
  # shellcheck disable=SC2012  # our own names: hex keys, no spaces
  while read -r old; do
    [[ -n "${old}" && "${old}" != "${in_use}" ]] || continue
    oomlab_log "pruning ${old}"
    rm -rf "${old}"
  done < <({ ls -1dt "${OOMLAB_VM_CACHE}"/????????????????/ 2>/dev/null | sed 's|/$||' | tail -n +$((OOMLAB_VM_KEEP + 1))
             ls -1t "${OOMLAB_VM_CACHE}"/rootfs-*.tar 2>/dev/null | tail -n +$((OOMLAB_VM_KEEP + 1)); } || true)
}

main() {
  local cmd="${1:-build}" memhog_id key out
  case "${cmd}" in
    build | key | rootfs) ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  if [[ "${cmd}" != rootfs ]]; then
    oomlab_docker_ok || oomlab_die "no Docker engine answers (the memhog image comes from it): run hack/docker-up.sh"
    [[ -x "${OOMLAB_VM_KUBELET}" ]] || oomlab_die "no kubelet at ${OOMLAB_VM_KUBELET}: run hack/k8s-build.sh k8s"
    memhog_id="$(memhog_image_id)"
    key="$(image_key "${memhog_id}")"
    if [[ "${cmd}" == key ]]; then echo "${key}"; return; fi
    out="${OOMLAB_VM_CACHE}/${key}"
    if [[ -s "${out}/disk.raw" && -s "${out}/inputs.txt" ]]; then
      oomlab_log "VM image ${key} is up to date (${out})"
      echo "${out}"
      return
    fi
  fi
  oomlab_need_root "runs debootstrap, chroot and mkfs"
  oomlab_apt_install e2fsprogs containerd gcc libc6-dev
  mkdir -p "${OOMLAB_VM_CACHE}"
  # One build at a time per cache.
  exec 8>"${OOMLAB_VM_CACHE}/.lock"
  flock 8
  if [[ "${cmd}" == rootfs ]]; then
    ensure_rootfs
  elif [[ -s "${out}/disk.raw" && -s "${out}/inputs.txt" ]]; then
    oomlab_log "VM image ${key} was built meanwhile"
    echo "${out}"
  else
    build_disk "${key}" "${out}" "${memhog_id}"
    prune_cache
    echo "${out}"
  fi
}

main "$@"
