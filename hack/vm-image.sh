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
# hashes every input (this script, hack/lib/rootfs.sh, hack/vm/rootfs, the package list, the
# kubelet binary, the image IDs). A run never writes to disk.raw: hack/vm-node.sh boots a qcow2
# overlay of it. The tree, apt and disk helpers are hack/lib/rootfs.sh's.
# Two stages, so that a new kubelet or memhog image costs about a minute, not a debootstrap:
#   1. rootfs-<key1>.tar: debootstrap minbase + the packages (apt in a chroot, services held
#      back by a policy-rc.d that exits 101); key1 = suite, packages, initramfs settings,
#      hack/lib/rootfs.sh.
#   2. the disk: that tree + hack/vm/rootfs + kubelet + images (imported by a temporary
#      containerd whose root is the guest's /var/lib/containerd), then mkfs.ext4 -d.
# Env: OOMLAB_VM_MEMHOG_IMAGE (oomlab/memhog:dev, from the local Docker engine),
#      OOMLAB_VM_DISK_SIZE (6G, sparse), OOMLAB_VM_KUBELET (the one hack/k8s-build.sh builds),
#      OOMLAB_DEBIAN_MIRROR, OOMLAB_VM_KEEP (2: older images are pruned after a build, per kubelet).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/k8s-env.sh
source "${HACK_DIR}/k8s-env.sh"

: "${OOMLAB_VM_CACHE:=${OOMLAB_CACHE}/vm}"
: "${OOMLAB_VM_MEMHOG_IMAGE:=oomlab/memhog:dev}"
: "${OOMLAB_VM_DISK_SIZE:=6G}"
: "${OOMLAB_VM_KUBELET:=${OOMLAB_K8S_BIN}/kubelet}"
: "${OOMLAB_VM_KEEP:=2}"   # disk images (about 1 GB each) and root filesystems kept in the cache

GUEST_FILES="${HACK_DIR}/vm/rootfs"
# Stage-1 recipe version: bump it when the way the root filesystem is made changes.
ROOTFS_RECIPE=1
BOOTSTRAP_PACKAGES=(systemd-sysv udev kmod iproute2)
PACKAGES=(linux-image-amd64 containerd runc crun containernetworking-plugins iptables
          ca-certificates dbus)
# Must equal sandbox_image in hack/vm/rootfs/etc/containerd/config.toml.
PAUSE_IMAGE=localhost/oomlab-pause:1
ENABLED_UNITS=(systemd-networkd.service containerd.service dbus.service oomlab-config.service
               oomlab-swap.service kubelet.service)
# The kubelet's oomlab.dev/thp label reads the THP mode the command line sets back from the kernel.
KERNEL_CMDLINE="${OOMLAB_GUEST_CMDLINE}"
MASKED_UNITS=("${OOMLAB_GUEST_MASKED_UNITS[@]}")

sha() { sha256sum | cut -c1-16; }
docker_() { oomlab_docker "$@"; }

stage1_key() {
  {
    printf '%s\n' "recipe ${ROOTFS_RECIPE}" "${OOMLAB_DEBIAN_SUITE}" "${BOOTSTRAP_PACKAGES[*]}" "${PACKAGES[*]}"
    oomlab_lib_sums rootfs.sh
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

# Stage 1 in the tree (hack/lib/rootfs.sh's oomlab_rootfs_tarball calls it after debootstrap).
guest_packages() { # root
  # The initramfs settings must be in place before the kernel package builds the initramfs.
  cp -r "${GUEST_FILES}/etc/initramfs-tools/." "$1/etc/initramfs-tools/"
  oomlab_chroot_apt "$1" "${PACKAGES[@]}"
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
  ensure_rootfs
  tarball="$(rootfs_tarball)"
  local t2=${SECONDS}
  tmp="$(mktemp -d "${OOMLAB_VM_CACHE}/disk.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: tmp is local
  trap "oomlab_remove_tree '${tmp}'" EXIT
  local root="${tmp}/root"
  mkdir -p "${root}" "${tmp}/out"
  oomlab_log "stage 2 (${key}): unpacking the root filesystem"
  oomlab_rootfs_untar "${tarball}" "${root}"
  cp -r --preserve=mode "${GUEST_FILES}/." "${root}/"
  install -m 755 "${OOMLAB_VM_KUBELET}" "${root}/usr/local/bin/kubelet"
  oomlab_guest_units "${root}" enable "${ENABLED_UNITS[@]}"
  oomlab_guest_units "${root}" mask "${MASKED_UNITS[@]}"
  preload_images "${root}" "${tmp}"
  oomlab_guest_disk "${root}" "${tmp}/out" "${KERNEL_CMDLINE}" "${OOMLAB_VM_DISK_SIZE}"
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
  oomlab_remove_tree "${tmp}"
  trap - EXIT
  oomlab_log "stage 2: ${out} in $((SECONDS - t2)) s; whole build $((SECONDS - start)) s"
}

rootfs_tarball() { echo "${OOMLAB_VM_CACHE}/rootfs-${OOMLAB_DEBIAN_SUITE}-$(stage1_key).tar"; }

ensure_rootfs() {
  oomlab_log "stage 1: the root filesystem $(basename "$(rootfs_tarball)")"
  oomlab_rootfs_tarball "$(rootfs_tarball)" guest_packages "${BOOTSTRAP_PACKAGES[@]}"
}

# Keeps, for each kubelet (the inputs.txt line), the newest OOMLAB_VM_KEEP disk images, so that
# the second VM node's older kubelet (hack/vm-node-old.sh) does not push the first one's image
# out; the newest OOMLAB_VM_KEEP root filesystems; and every image a running VM node boots from
# (each hack/vm-node.sh state directory records its own).
prune_cache() {
  local in_use old dir kubelet
  in_use="$(cat "${OOMLAB_STATE}"/vm-node*/image 2>/dev/null || true)"
  local -A kept=()
  # shellcheck disable=SC2012  # our own names: hex keys, no spaces
  while read -r dir; do
    [[ -n "${dir}" ]] || continue
    kubelet="$(awk '$1 == "kubelet" { print $3 }' "${dir}/inputs.txt" 2>/dev/null || true)"
    kept[${kubelet:-none}]=$((${kept[${kubelet:-none}]:-0} + 1))
    if ((kept[${kubelet:-none}] > OOMLAB_VM_KEEP)) && ! grep -qxF "${dir}" <<<"${in_use}"; then
      oomlab_log "pruning ${dir}"
      rm -rf "${dir}"
    fi
  done < <(ls -1dt "${OOMLAB_VM_CACHE}"/????????????????/ 2>/dev/null | sed 's|/$||' || true)
  # shellcheck disable=SC2012
  while read -r old; do
    [[ -n "${old}" ]] || continue
    oomlab_log "pruning ${old}"
    rm -rf "${old}"
  done < <(ls -1t "${OOMLAB_VM_CACHE}"/rootfs-*.tar 2>/dev/null | tail -n +$((OOMLAB_VM_KEEP + 1)) || true)
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
    oomlab_guest_image_built "${out}" && return
  fi
  oomlab_need_root "runs debootstrap, chroot and mkfs"
  oomlab_apt_install e2fsprogs containerd
  mkdir -p "${OOMLAB_VM_CACHE}"
  # One build at a time per cache.
  exec 8>"${OOMLAB_VM_CACHE}/.lock"
  flock 8
  if [[ "${cmd}" == rootfs ]]; then
    ensure_rootfs
    rootfs_tarball
  elif ! oomlab_guest_image_built "${out}"; then
    build_disk "${key}" "${out}" "${memhog_id}"
    prune_cache
    echo "${out}"
  fi
}

main "$@"
