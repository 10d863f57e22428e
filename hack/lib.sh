# shellcheck shell=bash
# Shared helpers for the hack/*.sh scripts. Source it; it defines variables and functions and
# runs nothing. Several scripts (and engineers) add to it: append, keep names oomlab_*.
# Root filesystems and image archives are in hack/lib/rootfs.sh, qemu guests in hack/lib/qemu.sh
# (sourced at the end).
#
#   # shellcheck source=hack/lib.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# (or hack/k8s-env.sh, which sources this file); then HACK_DIR is this folder, absolute.

: "${OOMLAB_CACHE:=/var/cache/oomlab}"   # downloads and build outputs worth keeping
: "${OOMLAB_STATE:=/var/lib/oomlab}"     # state of things we started (logs, swapfile)
: "${OOMLAB_RUN:=/run/oomlab}"           # pidfiles and markers; gone after a reboot, like the processes

# shellcheck disable=SC2034  # for the scripts that source this file
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034  # for the scripts that source this file
OOMLAB_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Logging: everything a script does is said on stderr.
oomlab_log() { printf '+++ [%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
oomlab_warn() { printf '!!! [%s] warning: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
oomlab_die() { printf '!!! %s\n' "$*" >&2; exit 1; }

# Say a command, then run it.
oomlab_run() {
  printf '+++ [%s] $ %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
  "$@"
}

oomlab_need_root() {
  [[ "$(id -u)" -eq 0 ]] || oomlab_die "$(basename "$0") must run as root (it $1)"
}

oomlab_have() { command -v "$1" >/dev/null 2>&1; }

# Runs a command as root: directly when we are root, else through sudo (keeping PATH and env).
oomlab_as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  else
    oomlab_have sudo || oomlab_die "$1 needs root and sudo is not available"
    sudo --preserve-env env "PATH=${PATH}" "$@"
  fi
}

# True when Debian package $1 is installed.
oomlab_pkg_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == "installed" ]]
}

# Install the Debian packages among "$@" that are missing. Waits for the dpkg lock (other
# scripts may be installing at the same time) and runs `apt-get update` only when needed.
oomlab_apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    oomlab_pkg_installed "${pkg}" || missing+=("${pkg}")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  oomlab_need_root "installs ${missing[*]}"
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  oomlab_log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2; then
    oomlab_log "install failed; refreshing package lists and trying again"
    oomlab_run "${apt[@]}" update >&2
    oomlab_run "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >&2
  fi
}

# The Debian mirror apt uses (for debootstrap), from deb822 sources or sources.list.
oomlab_debian_mirror() {
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "${f}" ]] || continue
    # The URIs of the stanza whose Suites name plain bookworm (not -security, not -updates).
    uri="$(awk '
      /^[[:space:]]*$/ { if (u != "" && s) { print u; exit } u=""; s=0; next }
      $1=="URIs:" { u=$2 }
      $1=="Suites:" { for (i=2; i<=NF; i++) if ($i ~ /^[a-z]+$/) s=1 }
      END { if (u != "" && s) print u }' "${f}" | head -n1)"
    [[ -n "${uri}" ]] && break
  done
  if [[ -z "${uri}" && -f /etc/apt/sources.list ]]; then
    uri="$(awk '$1=="deb" && $3 !~ /-(security|updates|backports)/ { for (i=2; i<=NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' \
      /etc/apt/sources.list)"
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

# The Docker client our scripts use. /usr/local/bin/docker on these machines is a newer client
# than Debian's engine; it negotiates the API version down, but OOMLAB_DOCKER can force either.
oomlab_docker_bin() {
  if [[ -n "${OOMLAB_DOCKER:-}" ]]; then
    printf '%s\n' "${OOMLAB_DOCKER}"
  elif [[ -x /usr/bin/docker ]]; then
    printf '%s\n' /usr/bin/docker
  else
    command -v docker || printf '%s\n' docker
  fi
}

oomlab_docker() { "$(oomlab_docker_bin)" "$@"; }

# True when a Docker engine answers.
oomlab_docker_ok() { oomlab_docker info >/dev/null 2>&1; }

# The engine hack/docker-up.sh starts, when it has to: its pidfiles, its containerd's socket and
# the marker that lists what it started (hack/docker-down.sh stops that and nothing else).
OOMLAB_DOCKER_RUN_DIR="${OOMLAB_RUN}/docker"
# shellcheck disable=SC2034  # for the scripts that source this file
OOMLAB_DOCKER_MARKER="${OOMLAB_DOCKER_RUN_DIR}/started-by-oomlab"
# shellcheck disable=SC2034  # for the scripts that source this file
OOMLAB_DOCKER_CTR_SOCK="${OOMLAB_DOCKER_RUN_DIR}/containerd/containerd.sock"
# shellcheck disable=SC2034  # for the scripts that source this file
OOMLAB_DOCKER_CTR_PIDFILE="${OOMLAB_DOCKER_RUN_DIR}/containerd.pid"
# shellcheck disable=SC2034  # for the scripts that source this file
OOMLAB_DOCKERD_PIDFILE="${OOMLAB_DOCKER_RUN_DIR}/dockerd.pid"

# True when a Docker API answers at ADDRESS (tcp://...): a guest's dockerd, or podman's service.
oomlab_engine_answers() { # address
  DOCKER_HOST="$1" oomlab_docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# True when the Docker client talks to an engine on another machine (DOCKER_HOST=tcp:// or
# ssh://, e.g. a qemu guest's dockerd forwarded to 127.0.0.1): its kernel, cgroups, swap and
# networks are that machine's, not this host's.
oomlab_docker_remote() { [[ "${DOCKER_HOST:-}" == tcp://* || "${DOCKER_HOST:-}" == ssh://* ]]; }

# --- waiting, addresses, kubeconfigs (all cluster scripts) ---

# Runs a command until it succeeds, at most SECONDS; false (and a warning) when it never did.
oomlab_wait_for() { # seconds description command...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      oomlab_warn "timed out waiting for ${what}"
      return 1
    fi
    sleep 0.5
  done
}

# True when an address or CIDR lies inside 100.64.0.0/10, where every oomlab network lives.
oomlab_in_shared_range() {
  local a b
  IFS=. read -r a b _ <<<"${1%/*}"
  [[ "${a}" == 100 && "${b}" -ge 64 && "${b}" -le 127 ]]
}

# The local cluster's admin kubeconfig (hack/local-cluster.sh writes it).
oomlab_local_kubeconfig() { printf '%s\n' "${OOMLAB_CLUSTER_STATE:-${OOMLAB_STATE}/cluster}/kubeconfig"; }

# Where a kind cluster's kubeconfig goes: the first file of $KUBECONFIG, else
# ${OOMLAB_STATE}/kind/kubeconfig as root, else ~/.kube/kind-NAME.
oomlab_kind_kubeconfig() { # cluster-name
  if [[ -n "${KUBECONFIG:-}" ]]; then
    printf '%s\n' "${KUBECONFIG%%:*}"
  elif [[ "$(id -u)" -eq 0 ]]; then
    printf '%s\n' "${OOMLAB_STATE}/kind/kubeconfig"
  else
    printf '%s\n' "${HOME}/.kube/kind-$1"
  fi
}

# The cluster kubectl talks to: $KUBECONFIG when set, else the local cluster's when it exists
# (what tests/e2e does too). Fails when there is neither.
oomlab_kubeconfig() {
  if [[ -n "${KUBECONFIG:-}" ]]; then
    printf '%s\n' "${KUBECONFIG}"
  elif [[ -f "$(oomlab_local_kubeconfig)" ]]; then
    oomlab_local_kubeconfig
  else
    return 1
  fi
}

# The interfaces 100.64.0.0/10 traffic may leave through (hack/egress-guard.sh), as iptables
# interface names ("+" ends a prefix): loopback, the local cluster's bridge (oomlab0), VM node
# taps (tap-oomlab*), kind's Docker bridge (kindbr*). Anything the project makes is named so.
: "${OOMLAB_EGRESS_ALLOW:=lo oomlab+ tap-oomlab+ kindbr+}"

# The project's interfaces that exist now (those OOMLAB_EGRESS_ALLOW names, loopback aside).
oomlab_project_interfaces() {
  local pattern name
  while read -r name; do
    for pattern in ${OOMLAB_EGRESS_ALLOW}; do
      [[ "${pattern}" == lo ]] && continue
      if [[ "${pattern}" == *+ && "${name}" == "${pattern%+}"* || "${name}" == "${pattern}" ]]; then
        printf '%s\n' "${name}"
        break
      fi
    done
  done < <(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }')
}

# --- kind helpers (hack/kind-up.sh, hack/kind-down.sh) ---

# The host's cgroup version for the memory controller: "v2" when /sys/fs/cgroup is the unified
# hierarchy (cgroup2fs), "v1" otherwise (legacy or hybrid, where memory is on v1).
oomlab_cgroup_version() {
  if [[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null || true)" == cgroup2fs ]]; then
    echo v2
  else
    echo v1
  fi
}

# The kind binary: `kind` on PATH, else the one hack/k8s-build.sh built for the pinned version,
# else ${OOMLAB_CACHE}/bin/kind. Prints nothing (and fails) when there is none.
oomlab_kind_bin() {
  local c
  if command -v kind >/dev/null 2>&1; then
    command -v kind
    return 0
  fi
  for c in "${OOMLAB_KIND_BIN:-}/kind" "${OOMLAB_CACHE}/bin/kind-${OOMLAB_KIND_VERSION:-}/kind" \
    "${OOMLAB_CACHE}/bin/kind"; do
    if [[ -x "${c}" && ! -d "${c}" ]]; then
      printf '%s\n' "${c}"
      return 0
    fi
  done
  return 1
}

# kubectl: the one hack/k8s-build.sh built (it matches the local cluster), else the one on PATH.
oomlab_kubectl_bin() {
  if [[ -n "${OOMLAB_K8S_BIN:-}" && -x "${OOMLAB_K8S_BIN}/kubectl" ]]; then
    printf '%s\n' "${OOMLAB_K8S_BIN}/kubectl"
  elif command -v kubectl >/dev/null 2>&1; then
    command -v kubectl
  else
    return 1
  fi
}

# Points the calling script at the cluster in KUBECONFIG (else the local one): sets KUBECTL
# (oomlab_kubectl_bin) and exports KUBECONFIG (oomlab_kubeconfig), or dies saying what is missing.
oomlab_use_cluster() {
  # shellcheck disable=SC2034  # for the calling script
  KUBECTL="$(oomlab_kubectl_bin)" || oomlab_die "no kubectl: run hack/k8s-build.sh or install one"
  KUBECONFIG="$(oomlab_kubeconfig)" || oomlab_die "no KUBECONFIG and no local cluster: run hack/cluster.sh up"
  export KUBECONFIG
}

# True when the capability bounding set lacks CAP_SYS_RESOURCE (bit 24). Docker 20.10 then
# cannot start --privileged containers (kind's nodes): hack/kind-up.sh shims docker for kind.
oomlab_lacks_cap_sys_resource() {
  local bnd
  bnd="$(awk '$1=="CapBnd:"{print $2}' /proc/self/status)"
  (((16#${bnd} >> 24 & 1) == 0))
}

# A FORWARD guard for a Docker bridge the project made for kind nodes: nothing is forwarded into
# or out of it (nodes talk to each other on the bridge, and the host reaches them directly).
# Chain OOMLAB-KIND-FWD, jumped to from FORWARD; `down` removes only that chain and its jump.
oomlab_kind_bridge_guard() { # up|down bridge
  local action="$1" bridge="$2" chain=OOMLAB-KIND-FWD iptables_=(iptables -w 10)
  case "${action}" in
    up)
      "${iptables_[@]}" -N "${chain}" 2>/dev/null || true
      "${iptables_[@]}" -C "${chain}" -i "${bridge}" ! -o "${bridge}" -j DROP 2>/dev/null ||
        "${iptables_[@]}" -A "${chain}" -i "${bridge}" ! -o "${bridge}" -j DROP
      "${iptables_[@]}" -C "${chain}" -o "${bridge}" ! -i "${bridge}" -j DROP 2>/dev/null ||
        "${iptables_[@]}" -A "${chain}" -o "${bridge}" ! -i "${bridge}" -j DROP
      if ! "${iptables_[@]}" -C FORWARD -j "${chain}" 2>/dev/null; then
        # Below the egress guard's jump, which keeps position 1 (hack/egress-guard.sh).
        local position=1
        [[ "$("${iptables_[@]}" -S FORWARD 2>/dev/null | sed -n 2p)" == "-A FORWARD -j OOMLAB-EGRESS-FWD" ]] && position=2
        "${iptables_[@]}" -I FORWARD "${position}" -j "${chain}"
      fi
      ;;
    down)
      while "${iptables_[@]}" -D FORWARD -j "${chain}" 2>/dev/null; do :; done
      if "${iptables_[@]}" -n -L "${chain}" >/dev/null 2>&1; then
        "${iptables_[@]}" -F "${chain}"
        "${iptables_[@]}" -X "${chain}"
      fi
      ;;
  esac
}

# --- hack/lib: root filesystems and image archives, qemu guests ---

# The sha256 of files in hack/lib, for the cache key of an image built with them.
oomlab_lib_sums() { (cd "${OOMLAB_REPO_ROOT}/hack/lib" && sha256sum "$@"); } # file...

# shellcheck source=hack/lib/rootfs.sh
source "${OOMLAB_REPO_ROOT}/hack/lib/rootfs.sh"
# shellcheck source=hack/lib/qemu.sh
source "${OOMLAB_REPO_ROOT}/hack/lib/qemu.sh"
