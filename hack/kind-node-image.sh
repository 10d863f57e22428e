#!/usr/bin/env bash
# Builds the kind node image oomlab/kind-node:<Kubernetes version> with no container registry,
# the way kind assembles its own (kind's `build node-image` fetches images, so it cannot be used):
#   1. binaries from the project's builds (hack/k8s-build.sh): kubeadm, kubelet, kubectl, the
#      control plane, kube-proxy, etcd, CoreDNS and crictl;
#   2. a debootstrap bookworm root filesystem with kind's base packages plus Debian's containerd,
#      runc and CNI plugins (cached tarball);
#   3. kind's own node files (images/base/files of the pinned kind module, from the Go module
#      cache) with the project's patches (hack/kind/patches/*.patch) applied on top;
#   4. the component images, named exactly as `kubeadm config images list` prints them, built as
#      docker-archive tarballs (one static binary each; kube-proxy also gets iptables) and
#      imported into the node's containerd store (that containerd, chrooted, no network).
# The image is written as a docker-archive (zstd) under ${OOMLAB_CACHE}/kind-node with a key of
# all its inputs (hack/lib/rootfs.sh builds the tree, the archives and the pause image: it is
# one of them), then `docker load`ed; with the same key nothing is rebuilt, and the engine
# loads the archive again only if it lost the image. Only the load needs the Docker engine.
#
# With --preload IMAGE (repeatable), IMAGE is taken from this host's Docker engine (docker save)
# and imported into the node's containerd beside the component images, as kind's own `build
# node-image` preloads images (ctr import --no-unpack: the kubelet unpacks it at first use), so a
# cluster of that node image runs it with no `kind load`. That image is
# oomlab/kind-node:<version>-preloaded, its archive kind-node-<version>-preloaded.tar.zst, and
# the preloaded images' IDs are part of its key.
#
# Usage: hack/kind-node-image.sh [--force] [--no-load] [--print-name] [--preload IMAGE]...
#   --force       rebuild even when the inputs did not change
#   --no-load     build the cached archive only (no Docker engine needed without --preload)
#   --print-name  print the image name and exit
#   --preload IMAGE  bake IMAGE (in this host's engine) into the node's containerd store
# Env: OOMLAB_KIND_NODE_IMAGE  image name (default oomlab/kind-node:${OOMLAB_K8S_VERSION}, with
#                              -preloaded appended when images are preloaded)
#      OOMLAB_DOCKER_LOCK      a lock file held while the preloaded images are read from this
#                              host's engine (their IDs and docker save), e.g. /tmp/oomlab-live.lock
#      OOMLAB_KIND_POD_SUBNET  the pod range of the node's static CNI config (default
#                              100.81.0.0/16); a kind config using this image must use the same
#                              podSubnet (hack/kind-up.sh checks it)
#      OOMLAB_DEBIAN_MIRROR    mirror for debootstrap (default: the one apt uses)
# Needs root (debootstrap, chroot, unshare) and, to load the image, the Docker engine.
set -euo pipefail

# shellcheck source=hack/k8s-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/k8s-env.sh"

PRELOAD=()
POD_SUBNET="${OOMLAB_KIND_POD_SUBNET:-100.81.0.0/16}"
CACHE_DIR="${OOMLAB_CACHE}/kind-node"
PATCH_DIR="${HACK_DIR}/kind/patches"
LABEL=org.oomlab.inputs
# kind's base image packages (its images/base/Dockerfile), minus network storage clients and
# curl, plus the container runtime and CNI plugins from Debian instead of kind's own builds.
PACKAGES=(systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod libseccomp2
  pigz fuse-overlayfs bash ca-certificates jq procps containerd runc containernetworking-plugins)
FORCE=0
LOAD=1
PRINT_NAME=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) FORCE=1; shift ;;
    --no-load) LOAD=0; shift ;;
    --print-name) PRINT_NAME=1; shift ;;
    --preload) PRELOAD+=("${2:?--preload needs an image}"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) oomlab_die "unknown argument: $1" ;;
  esac
done

# The image and its cached archive's name: the preloaded variant is a separate image.
VARIANT="${OOMLAB_K8S_VERSION}${PRELOAD[0]:+-preloaded}"
IMAGE="${OOMLAB_KIND_NODE_IMAGE:-oomlab/kind-node:${VARIANT}}"
if [[ "${PRINT_NAME}" == 1 ]]; then
  printf '%s\n' "${IMAGE}"
  exit 0
fi

docker_() { oomlab_docker "$@"; }
sha() { sha256sum | cut -d' ' -f1; }
timed() { # name command...: runs the command and says how long it took
  local name="$1" start=${SECONDS}
  shift
  "$@"
  oomlab_log "${name}: $((SECONDS - start)) s"
}

KIND_FILES=""
KUBEADM_IMAGES=()
image_ref() { # component: its reference as kubeadm lists it
  local ref
  for ref in "${KUBEADM_IMAGES[@]}"; do
    [[ "${ref}" =~ /$1: ]] && { printf '%s\n' "${ref}"; return 0; }
  done
  oomlab_die "kubeadm lists no image for $1 (${KUBEADM_IMAGES[*]})"
}

build_inputs() {
  "${HACK_DIR}/k8s-build.sh" k8s kubeadm etcd coredns crictl
  oomlab_go_env
  (cd / && go mod download "sigs.k8s.io/kind@${OOMLAB_KIND_VERSION}")
  KIND_FILES="${GOMODCACHE}/sigs.k8s.io/kind@${OOMLAB_KIND_VERSION}/images/base/files"
  [[ -d "${KIND_FILES}" ]] || oomlab_die "no ${KIND_FILES}"
  mapfile -t KUBEADM_IMAGES < <("${OOMLAB_K8S_BIN}/kubeadm" config images list \
    --kubernetes-version "${OOMLAB_K8S_VERSION}" 2>/dev/null)
  local coredns
  coredns="$(image_ref coredns)"
  [[ "${coredns##*:}" == "${OOMLAB_COREDNS_VERSION}" ]] ||
    oomlab_die "kubeadm wants ${coredns}, but OOMLAB_COREDNS_VERSION is ${OOMLAB_COREDNS_VERSION}"
}

binaries() {
  printf '%s\n' "${OOMLAB_K8S_BIN}"/{kubeadm,kubelet,kubectl,kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy} \
    "${OOMLAB_ETCD_BIN}/etcd" "${OOMLAB_COREDNS_BIN}/coredns" "${OOMLAB_CRICTL_BIN}/crictl"
}

# Everything the image is made of: a change in any of them means a rebuild.
inputs_key() {
  {
    printf '%s\n' "${IMAGE}" "${POD_SUBNET}" "${OOMLAB_DEBIAN_SUITE}" "${PACKAGES[*]}" "${KUBEADM_IMAGES[*]}"
    sha256sum "$0" "${HACK_DIR}/pause/pause.c" "${PATCH_DIR}"/*.patch | cut -d' ' -f1
    oomlab_lib_sums rootfs.sh
    (cd "${KIND_FILES}" && find . -type f | LC_ALL=C sort | xargs sha256sum)
    binaries | xargs sha256sum | cut -d' ' -f1
    [[ -z "${PRELOAD[0]:-}" ]] || cat "${PRELOAD_IDS}"
  } | sha | cut -c1-16
}

# --- the root filesystem -------------------------------------------------------------------------
# The cached debootstrap tree with the packages (hack/lib/rootfs.sh builds it when missing).
rootfs_tarball() {
  local hash
  hash="$({ printf '%s %s\n' "${OOMLAB_DEBIAN_SUITE}" "${PACKAGES[*]}"; oomlab_lib_sums rootfs.sh; } | sha | cut -c1-16)"
  printf '%s\n' "${CACHE_DIR}/rootfs-${OOMLAB_DEBIAN_SUITE}-${hash}.tar"
}

# kind's node files, the project's patches, the binaries and the static CNI config, in $1.
assemble_root() {
  local root="$1" pause_ref
  oomlab_rootfs_tarball "$(rootfs_tarball)" - "${PACKAGES[@]}"
  oomlab_rootfs_untar "$(rootfs_tarball)" "${root}"
  # As kind's Dockerfile copies them: scripts 0755, everything else 0644.
  (umask 022 && cp -r --no-preserve=mode "${KIND_FILES}/." "${root}/")
  chmod 0755 "${root}"/usr/local/bin/* "${root}"/kind/bin/*
  local p
  for p in "${PATCH_DIR}"/*.patch; do
    oomlab_log "patch: ${p#"${OOMLAB_REPO_ROOT}"/}"
    patch -d "${root}" -p1 --forward --no-backup-if-mismatch --quiet <"${p}"
  done
  # What kind's Dockerfile does after installing packages.
  (
    cd "${root}"
    find lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f lib/systemd/system/multi-user.target.wants/* etc/systemd/system/*.wants/* \
      lib/systemd/system/local-fs.target.wants/* lib/systemd/system/sockets.target.wants/*udev* \
      lib/systemd/system/sockets.target.wants/*initctl* lib/systemd/system/basic.target.wants/*
    echo "ReadKMsg=no" >>etc/systemd/journald.conf
    ln -sf /lib/systemd/systemd usr/sbin/init
    mkdir -p etc/kubernetes/manifests kind/manifests etc/cni/net.d
  )
  systemctl --root="${root}" --quiet enable kubelet.service containerd.service undo-mount-hacks.service
  systemctl --root="${root}" --quiet mask systemd-binfmt.service
  # kind's units and config expect its own builds' paths; Debian's packages live elsewhere.
  ln -sf /usr/bin/containerd "${root}/usr/local/bin/containerd"
  rm -rf "${root}/opt/cni/bin" && mkdir -p "${root}/opt/cni" && ln -s /usr/lib/cni "${root}/opt/cni/bin"
  install -m 0755 "${OOMLAB_K8S_BIN}"/{kubeadm,kubelet,kubectl} "${root}/usr/bin/"
  install -m 0755 "${OOMLAB_CRICTL_BIN}/crictl" "${root}/usr/local/bin/"
  printf '%s' "${OOMLAB_K8S_VERSION}" >"${root}/kind/version"
  pause_ref="$(image_ref pause)"
  sed -i "s|^\(\s*sandbox_image = \).*|\1\"${pause_ref}\"|" "${root}/etc/containerd/config.toml"
  grep -q "sandbox_image = \"${pause_ref}\"" "${root}/etc/containerd/config.toml" ||
    oomlab_die "could not set sandbox_image in kind's containerd config"
  # No kindnet (its image is not built here): a static ptp + host-local config for one node,
  # and in place of kind's CNI manifest a ConfigMap that says so.
  cat >"${root}/etc/cni/net.d/10-oomlab.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "oomlab-kind",
  "plugins": [
    {"type": "ptp", "ipMasq": false, "mtu": 1500,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "${POD_SUBNET}"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"${root}/kind/manifests/default-cni.yaml" <<EOF
# oomlab/kind-node: pods use a static CNI config in the image (ptp + host-local ${POD_SUBNET}),
# /etc/cni/net.d/10-oomlab.conflist; there is no CNI daemon to deploy.
apiVersion: v1
kind: ConfigMap
metadata:
  name: oomlab-static-cni
  namespace: kube-system
data:
  podSubnet: "${POD_SUBNET}"
EOF
}

# --- component images ----------------------------------------------------------------------------
# kube-proxy runs iptables: Debian's xtables binaries and extensions with their libraries (taken
# from the node's root filesystem), and a wrapper that picks legacy or nft the way kind's
# entrypoint does for the node (whichever already holds more rules).
add_iptables() { # node-root image-dir
  local root="$1" dir="$2" lib libs
  local xt=/usr/lib/x86_64-linux-gnu/xtables
  local files=(/usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi /usr/bin/dash)
  mapfile -t libs < <(chroot "${root}" sh -c "ldd ${files[*]} ${xt}/*.so" |
    awk '$2=="=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' | sort -u)
  for lib in "${files[@]}" "${libs[@]}"; do
    (cd "${root}" && cp -L --parents "${lib#/}" "${dir}/")
  done
  (cd "${root}" && cp -a --parents "${xt#/}" "${dir}/")
  mkdir -p "${dir}/bin" "${dir}/run" "${dir}/dev"
  ln -s /usr/bin/dash "${dir}/bin/sh"
  cat >"${dir}/usr/sbin/iptables-wrapper" <<'EOF'
#!/bin/sh
# oomlab: runs iptables* on the legacy or the nft backend: whichever holds more rules in this
# network namespace at the first call (as kind's entrypoint decides for the node), remembered.
set -eu
choice=/tmp/oomlab-iptables-mode
count() {
  n=0
  while read -r line; do case "${line}" in -*) n=$((n + 1)) ;; esac; done
  echo "${n}"
}
if [ -s "${choice}" ]; then
  read -r mode <"${choice}"
else
  legacy=$( { /usr/sbin/xtables-legacy-multi iptables-save; /usr/sbin/xtables-legacy-multi ip6tables-save; } 2>/dev/null | count)
  nft=$( { /usr/sbin/xtables-nft-multi iptables-save; /usr/sbin/xtables-nft-multi ip6tables-save; } 2>/dev/null | count)
  mode=nft
  [ "${legacy}" -ge "${nft}" ] && mode=legacy
  echo "${mode}" >"${choice}"
fi
exec "/usr/sbin/xtables-${mode}-multi" "${0##*/}" "$@"
EOF
  chmod 0755 "${dir}/usr/sbin/iptables-wrapper"
  local t
  for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -s iptables-wrapper "${dir}/usr/sbin/${t}"
  done
}

component_archives() { # node-root out-dir
  local root="$1" out="$2" c dir env='"Env":["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
  mkdir -p "${out}"
  for c in kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd; do
    dir="${out}/${c}.d"
    mkdir -p "${dir}/usr/local/bin" "${dir}/tmp" "${dir}/var/run"
    chmod 1777 "${dir}/tmp"
    if [[ "${c}" == etcd ]]; then
      install -m 0755 "${OOMLAB_ETCD_BIN}/etcd" "${dir}/usr/local/bin/"
    else
      install -m 0755 "${OOMLAB_K8S_BIN}/${c}" "${dir}/usr/local/bin/"
    fi
    [[ "${c}" == kube-proxy ]] && add_iptables "${root}" "${dir}"
    oomlab_image_archive "$(image_ref "${c}")" "${dir}" "${out}/${c}.tar" \
      "{${env},\"Entrypoint\":[\"/usr/local/bin/${c}\"],\"Labels\":{\"org.oomlab.built-from\":\"${c} $(built_version "${c}")\"}}"
    rm -rf "${dir}"
  done
  dir="${out}/coredns.d"
  mkdir -p "${dir}/tmp" && chmod 1777 "${dir}/tmp"
  install -m 0755 "${OOMLAB_COREDNS_BIN}/coredns" "${dir}/coredns"
  oomlab_image_archive "$(image_ref coredns)" "${dir}" "${out}/coredns.tar" \
    "{${env},\"Entrypoint\":[\"/coredns\"],\"Labels\":{\"org.oomlab.built-from\":\"coredns ${OOMLAB_COREDNS_VERSION}\"}}"
  rm -rf "${dir}"
  oomlab_pause_image_tar "${out}/pause.tar" "$(image_ref pause)"
}

# etcd's image keeps kubeadm's name and tag; the label says which etcd is really inside.
built_version() {
  if [[ "$1" == etcd ]]; then echo "${OOMLAB_ETCD_VERSION}"; else echo "${OOMLAB_K8S_VERSION}"; fi
}

# --- preloaded images ----------------------------------------------------------------------------
PRELOAD_TAR="${CACHE_DIR}/preload-${VARIANT}.tar"
PRELOAD_IDS="${CACHE_DIR}/preload-${VARIANT}.ids"

# The images to preload, saved from this host's engine with their IDs read in the same hold of
# the lock (so a rebuild by someone else cannot slip in between the key and the archive).
save_preloaded() {
  local fd image id
  oomlab_docker_ok || oomlab_die "no Docker engine answers: --preload takes the images from it"
  if [[ -n "${OOMLAB_DOCKER_LOCK:-}" ]]; then
    exec {fd}>"${OOMLAB_DOCKER_LOCK}"
    flock "${fd}"
  fi
  for image in "${PRELOAD[@]}"; do
    id="$(docker_ image inspect --format '{{.Id}}' "${image}")" ||
      oomlab_die "${image} is not in this host's Docker engine (make images)"
    printf '%s %s\n' "${image}" "${id}"
  done >"${PRELOAD_IDS}.part"
  if ! cmp -s "${PRELOAD_IDS}.part" "${PRELOAD_IDS}" || [[ ! -s "${PRELOAD_TAR}" ]]; then
    docker_ save "${PRELOAD[@]}" >"${PRELOAD_TAR}.part"
    mv -f "${PRELOAD_TAR}.part" "${PRELOAD_TAR}"
  fi
  mv -f "${PRELOAD_IDS}.part" "${PRELOAD_IDS}"
  [[ -z "${fd:-}" ]] || exec {fd}>&-
  oomlab_log "preloading: $(tr '\n' ' ' <"${PRELOAD_IDS}")"
}

# How containerd names a Docker-style reference after import (docker.io/ for Docker Hub names).
containerd_ref() { # ref
  local first="${1%%/*}"
  if [[ "$1" != */* ]]; then
    printf 'docker.io/library/%s\n' "$1"
  elif [[ "${first}" == *.* || "${first}" == *:* || "${first}" == localhost ]]; then
    printf '%s\n' "$1"
  else
    printf 'docker.io/%s\n' "$1"
  fi
}

# --- the image -----------------------------------------------------------------------------------
# The component images go into the node's containerd store by running that containerd (with no
# CRI plugin) chrooted into the root filesystem, in namespaces of its own with no network.
import_component_images() { # node-root archives-dir
  local root="$1" images="$2" ref
  mkdir -p "${root}/tmp/oomlab-images"
  cp "${images}"/*.tar "${root}/tmp/oomlab-images/"
  printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"${root}/tmp/oomlab-containerd.toml"
  cat >"${root}/tmp/oomlab-import.sh" <<'EOF'
set -euo pipefail
containerd --config /tmp/oomlab-containerd.toml --log-level error &
pid=$!
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
for archive in /tmp/oomlab-images/*.tar; do
  ctr -n k8s.io images import --no-unpack --digests "${archive}" >/dev/null
done
ctr -n k8s.io images ls -q >/tmp/oomlab-images/list
kill "${pid}"
wait "${pid}" || true
EOF
  # shellcheck disable=SC2016  # expanded by the inner shell
  unshare --mount --pid --net --fork bash -euc \
    'mount -t proc proc "$1/proc" && mount --bind /dev "$1/dev" && exec chroot "$1" /bin/bash /tmp/oomlab-import.sh' \
    import-images "${root}"
  for ref in "${KUBEADM_IMAGES[@]}"; do
    grep -qxF "${ref}" "${root}/tmp/oomlab-images/list" || oomlab_die "${ref} is not in the node's containerd"
  done
  for ref in "${PRELOAD[@]}"; do
    ref="$(containerd_ref "${ref}")"
    grep -qxF "${ref}" "${root}/tmp/oomlab-images/list" || oomlab_die "${ref} (preloaded) is not in the node's containerd"
  done
  rm -rf "${root}"/tmp/oomlab-* "${root:?}"/run/*
}

# The node image as a docker-archive (what `docker load` reads), compressed into the cache.
build_archive() { # key tarball
  local key="$1" tarball="$2" work config
  work="$(mktemp -d "${CACHE_DIR}/build.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: work is local
  trap "rm -rf '${work}'" EXIT
  mkdir -p "${work}/root"
  timed "node root filesystem" assemble_root "${work}/root"
  timed "component images" component_archives "${work}/root" "${work}/images"
  [[ -z "${PRELOAD[0]:-}" ]] || cp "${PRELOAD_TAR}" "${work}/images/preloaded.tar"
  timed "component images into the node's containerd" import_component_images "${work}/root" "${work}/images"
  # As kind's image: systemd is told it runs in a container, and stops on SIGRTMIN+3.
  config='{"Env":["container=docker","PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],'
  config+='"Entrypoint":["/usr/local/bin/entrypoint","/sbin/init"],"StopSignal":"SIGRTMIN+3",'
  config+="\"Labels\":{\"${LABEL}\":\"${key}\",\"org.oomlab.kind-pod-subnet\":\"${POD_SUBNET}\"}}"
  timed "node image archive" oomlab_image_archive "${IMAGE}" "${work}/root" "${work}/node.tar" "${config}"
  timed "zstd" zstd -q -T0 -3 -f -o "${tarball}.part" "${work}/node.tar"
  mv -f "${tarball}.part" "${tarball}"
  rm -rf "${work}"
  trap - EXIT
}

main() {
  oomlab_need_root "runs debootstrap and chroot"
  mkdir -p "${CACHE_DIR}"
  local start=${SECONDS} key tarball keyfile
  timed "binaries (hack/k8s-build.sh)" build_inputs
  [[ -z "${PRELOAD[0]:-}" ]] || timed "docker save ${PRELOAD[*]}" save_preloaded
  key="$(inputs_key)"
  tarball="${CACHE_DIR}/kind-node-${VARIANT}.tar.zst"
  keyfile="${CACHE_DIR}/kind-node-${VARIANT}.key"
  if [[ "${FORCE}" == 1 || ! -s "${tarball}" || "$(cat "${keyfile}" 2>/dev/null || true)" != "${key}" ]]; then
    oomlab_log "building ${IMAGE} (inputs ${key}; pods in ${POD_SUBNET})"
    build_archive "${key}" "${tarball}"
    printf '%s\n' "${key}" >"${keyfile}"
    oomlab_log "${tarball}: $(du -h "${tarball}" | cut -f1)"
  fi
  if [[ "${LOAD}" == 1 ]]; then
    oomlab_docker_ok || oomlab_die "no Docker engine answers: run hack/docker-up.sh first"
    if [[ "$(docker_ image inspect --format "{{ index .Config.Labels \"${LABEL}\" }}" "${IMAGE}" 2>/dev/null || true)" == "${key}" ]]; then
      oomlab_log "${IMAGE} in the engine is up to date (inputs ${key})"
    else
      timed "docker load" bash -c "zstd -dc '${tarball}' | '$(oomlab_docker_bin)' load -q >/dev/null"
    fi
  fi
  oomlab_log "${IMAGE} ready in $((SECONDS - start)) s"
}

main "$@"
