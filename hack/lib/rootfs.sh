# shellcheck shell=bash
# Root filesystems and image archives, for the image scripts (hack/images.sh, hack/vm-image.sh,
# hack/vm-engine-image.sh, hack/kind-node-image.sh) and the local cluster's pause image.
# hack/lib.sh sources it; it defines variables and functions and runs nothing.
# The images' cache keys hash this file: a change here rebuilds them.

: "${OOMLAB_DEBIAN_SUITE:=bookworm}"
: "${OOMLAB_DEBIAN_SECURITY_MIRROR:=http://deb.debian.org/debian-security}"

# --- Debian trees ------------------------------------------------------------------------------

# debootstrap minbase (plus the packages named) into ROOT, from the mirror apt uses
# (OOMLAB_DEBIAN_MIRROR overrides it). The log goes beside ROOT; its tail is said on failure.
oomlab_debootstrap() { # root [package...]
  local root="$1" mirror include log
  shift
  log="$(dirname "${root}")/debootstrap.log"
  include="$(IFS=,; echo "$*")"
  oomlab_apt_install debootstrap
  mirror="${OOMLAB_DEBIAN_MIRROR:-$(oomlab_debian_mirror)}"
  oomlab_log "debootstrap ${OOMLAB_DEBIAN_SUITE} minbase${include:+ + ${include}} from ${mirror}"
  debootstrap --variant=minbase ${include:+"--include=${include}"} "${OOMLAB_DEBIAN_SUITE}" \
    "${root}" "${mirror}" >"${log}" 2>&1 || {
      tail -n 30 "${log}" >&2
      oomlab_die "debootstrap failed"
    }
}

# apt-get install in the chroot ROOT (a debootstrap tree): sources for the suite, its updates
# and security; no service starts (a policy-rc.d that exits 101); /proc mounted meanwhile. The
# log goes beside ROOT; its tail is said on failure.
oomlab_chroot_apt() { # root package...
  local root="$1" mirror log rc=0
  shift
  log="$(dirname "${root}")/apt.log"
  mirror="${OOMLAB_DEBIAN_MIRROR:-$(oomlab_debian_mirror)}"
  cat >"${root}/etc/apt/sources.list" <<EOF
deb ${mirror} ${OOMLAB_DEBIAN_SUITE} main
deb ${mirror} ${OOMLAB_DEBIAN_SUITE}-updates main
deb ${OOMLAB_DEBIAN_SECURITY_MIRROR} ${OOMLAB_DEBIAN_SUITE}-security main
EOF
  printf '#!/bin/sh\n# Build time: start no service in the chroot.\nexit 101\n' >"${root}/usr/sbin/policy-rc.d"
  chmod 755 "${root}/usr/sbin/policy-rc.d"
  local apt=(chroot "${root}" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
             apt-get -o Acquire::Retries=3 -o APT::Install-Recommends=false)
  oomlab_log "apt-get install $* (in the chroot)"
  mount -t proc proc "${root}/proc"
  { "${apt[@]}" update && "${apt[@]}" install -y "$@"; } >"${log}" 2>&1 || rc=$?
  umount "${root}/proc"
  rm -f "${root}/usr/sbin/policy-rc.d"
  if ((rc != 0)); then
    tail -n 40 "${log}" >&2
    oomlab_die "apt-get in the chroot ${root} failed"
  fi
}

# Drops what a throwaway tree does not need: package caches and lists, docs, logs.
oomlab_rootfs_trim() { # root
  (
    cd "$1"
    rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* \
      usr/share/doc/* usr/share/man/* usr/share/info/* usr/share/locale/* \
      var/log/*.log var/cache/debconf/*-old var/lib/dpkg/*-old debootstrap
  )
}

# Unmounts everything under DIR (deepest first), then removes it. Refuses to remove a tree that
# still has a mount in it (a bound /dev or /proc would take the host's along).
oomlab_remove_tree() { # dir
  local dir="$1" m
  [[ -e "${dir}" ]] || return 0
  while read -r m; do
    umount "${m}" 2>/dev/null || umount -l "${m}"
  done < <(findmnt -rn -o TARGET | grep -E "^${dir}(/|$)" | sort -r)
  [[ -z "$(findmnt -rn -o TARGET | grep -E "^${dir}(/|$)" || true)" ]] ||
    oomlab_die "still mounted under ${dir}: not removing it"
  rm -rf "${dir}"
}

oomlab_rootfs_untar() { # tarball root
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$2" -xf "$1"
}

# TARBALL, built unless it is there: debootstrap with the packages named, then `SETUP ROOT`
# unless SETUP is - (a function of the caller: files, oomlab_chroot_apt), then trimmed and packed.
# A subshell, so that its temporary tree goes on any exit and the caller's traps stay as they are.
oomlab_rootfs_tarball() ( # tarball setup-function|- [package...]
  set -euo pipefail # also where the caller runs with -e cleared, as in $(...)
  tarball="$1" setup="$2" start=${SECONDS}
  shift 2
  if [[ -s "${tarball}" ]]; then
    oomlab_log "using the cached root filesystem ${tarball}"
    exit 0
  fi
  mkdir -p "$(dirname "${tarball}")"
  tmp="$(mktemp -d "${tarball%.tar}.XXXXXX")"
  # shellcheck disable=SC2064  # expand now
  trap "oomlab_remove_tree '${tmp}'" EXIT
  oomlab_debootstrap "${tmp}/root" "$@"
  [[ "${setup}" == - ]] || "${setup}" "${tmp}/root"
  oomlab_rootfs_trim "${tmp}/root"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "${tmp}/root" -cf "${tarball}.part" .
  mv "${tarball}.part" "${tarball}"
  oomlab_log "root filesystem ${tarball} ($(du -h "${tarball}" | cut -f1)) in $((SECONDS - start)) s"
)

# --- image archives (no registry, no engine) -----------------------------------------------------

# A docker-archive (what `docker load` and `ctr images import` read) at OUT of image REF, whose one
# layer is directory DIR; CONFIG is the image's config object (JSON: Entrypoint, Env, ...).
oomlab_image_archive() { # ref dir out config-json
  local ref="$1" dir="$2" out="$3" config="$4" work layer_sha cfg cfg_sha
  work="$(mktemp -d "${out}.XXXXXX")"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "${dir}" -cf "${work}/layer.tar" .
  layer_sha="$(sha256sum "${work}/layer.tar" | cut -d' ' -f1)"
  cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":${config},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:${layer_sha}\"]}}"
  cfg_sha="$(printf '%s' "${cfg}" | sha256sum | cut -d' ' -f1)"
  printf '%s' "${cfg}" >"${work}/${cfg_sha}.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "${cfg_sha}" "${ref}" >"${work}/manifest.json"
  tar -C "${work}" -cf "${out}" manifest.json "${cfg_sha}.json" layer.tar
  rm -rf "${work}"
}

# The sandbox ("pause") image REF as a docker-archive at DEST: hack/pause/pause.c, built static,
# run as 65535. The one builder for the local cluster, the VM node and the kind node.
oomlab_pause_image_tar() { # dest ref
  local dir
  oomlab_apt_install gcc libc6-dev
  dir="$(mktemp -d "$1.XXXXXX")"
  chmod 0755 "${dir}" # the layer's root directory: 65535 must be able to run /pause
  gcc -Os -static -s -Wall -Wextra -o "${dir}/pause" "${OOMLAB_REPO_ROOT}/hack/pause/pause.c"
  oomlab_image_archive "$2" "${dir}" "$1" \
    '{"Entrypoint":["/pause"],"User":"65535:65535","Labels":{"org.oomlab.built-from":"hack/pause/pause.c"}}'
  rm -rf "${dir}"
}

# --- qemu guest trees (hack/vm-image.sh, hack/vm-engine-image.sh) --------------------------------

# THP is set deliberately (FACTS: with `always`, swapped pages were charged again and pods died
# early); the guests read the mode back from the kernel.
# shellcheck disable=SC2034  # for the scripts that source this file
OOMLAB_GUEST_CMDLINE="console=ttyS0 root=/dev/vda rw quiet net.ifnames=0 fsck.mode=skip transparent_hugepage=madvise"
# A getty fights other writers on the serial console; the rest only slow a boot under emulation
# or have no work to do in a throwaway guest.
# shellcheck disable=SC2034
OOMLAB_GUEST_MASKED_UNITS=(serial-getty@ttyS0.service getty@tty1.service systemd-firstboot.service
  e2scrub_reap.service e2scrub_all.timer fstrim.timer apt-daily.timer apt-daily-upgrade.timer
  dpkg-db-backup.timer systemd-networkd-wait-online.service systemd-timesyncd.service)

# Enables units in a guest tree (systemctl in the chroot) or masks them.
oomlab_guest_units() { # root enable|mask unit...
  local root="$1" action="$2" said unit
  shift 2
  case "${action}" in
    enable)
      said="$(chroot "${root}" systemctl enable "$@" 2>&1)" || {
        printf '%s\n' "${said}" >&2
        oomlab_die "systemctl enable in the guest tree failed"
      }
      ;;
    mask) for unit in "$@"; do ln -sfn /dev/null "${root}/etc/systemd/system/${unit}"; done ;;
    *) oomlab_die "oomlab_guest_units: enable or mask, not ${action}" ;;
  esac
}

# True (and says DIR) when DIR holds a built guest image: its disk and its inputs.txt, written last.
oomlab_guest_image_built() { # dir
  [[ -s "$1/disk.raw" && -s "$1/inputs.txt" ]] || return 1
  oomlab_log "guest image $(basename "$1") is built ($1)"
  echo "$1"
}

# A guest's boot files in OUT (hack/lib/qemu.sh boots them): the tree's kernel and initrd, the
# kernel command line, and the tree as disk.raw, a sparse ext4 image of SIZE.
oomlab_guest_disk() { # root out-dir cmdline size
  local root="$1" out="$2"
  cp "${root}"/boot/vmlinuz-* "${out}/vmlinuz"
  cp "${root}"/boot/initrd.img-* "${out}/initrd.img"
  printf '%s\n' "$3" >"${out}/cmdline"
  oomlab_log "mkfs.ext4 -d (${4}, sparse)"
  mkfs.ext4 -q -F -L oomlab-root -d "${root}" "${out}/disk.raw" "$4" >&2
}
