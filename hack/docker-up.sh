#!/usr/bin/env bash
# Makes sure a Docker engine answers. If one already does, it is used as it is and nothing
# changes. Otherwise this installs Debian's docker.io (with crun, podman, stress-ng and
# debootstrap, which the other hack scripts and the benchmarks use) and starts, in the
# background:
#   - a containerd of our own (socket under ${OOMLAB_RUN}/docker), so that the engine does not
#     share the containerd that a local Kubernetes node may run on /run/containerd;
#   - dockerd --iptables=false --bridge=none --ip-forward=false --add-runtime crun=/usr/bin/crun
#     (experiments run with --network none: the host's network is left alone).
# A marker records that we started them; hack/docker-down.sh stops only what it names.
#
# Usage: hack/docker-up.sh          (idempotent)
# Env:   OOMLAB_DOCKER=/path/to/docker  client to use (default: Debian's /usr/bin/docker)
#        OOMLAB_DOCKER_WAIT=60          seconds to wait for the engine
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE_DIR="${OOMLAB_STATE}/docker"
WAIT="${OOMLAB_DOCKER_WAIT:-60}"

say_versions() {
  local client server
  server="$(oomlab_docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?')"
  client="$(oomlab_docker version --format '{{.Client.Version}}' 2>/dev/null || echo '?')"
  oomlab_log "Docker engine ${server} answers; client $(oomlab_docker_bin) ${client}"
  # The newer client on PATH (if any) must be able to talk to this engine too.
  local other
  other="$(command -v docker || true)"
  if [[ -n "${other}" && "${other}" != "$(oomlab_docker_bin)" ]]; then
    if "${other}" version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      oomlab_log "${other} ($("${other}" version --format '{{.Client.Version}}' 2>/dev/null)) negotiates the API with it too"
    else
      oomlab_warn "${other} cannot talk to this engine; use $(oomlab_docker_bin) (or set OOMLAB_DOCKER)"
    fi
  fi
}

alive() { # pidfile comm
  local pid
  [[ -s "$1" ]] || return 1
  pid="$(cat "$1")"
  [[ -d "/proc/${pid}" && "$(cat "/proc/${pid}/comm" 2>/dev/null)" == "$2" ]]
}

if oomlab_docker_ok; then
  oomlab_log "a Docker engine already answers: leaving it as it is"
  say_versions
  exit 0
fi

oomlab_need_root "installs packages and starts dockerd"
oomlab_apt_install docker.io containerd runc crun podman stress-ng debootstrap
[[ -x "$(oomlab_docker_bin)" ]] || oomlab_die "no docker client at $(oomlab_docker_bin)"

mkdir -p "${OOMLAB_DOCKER_RUN_DIR}/containerd" "${STATE_DIR}"

# 1. our containerd (skipped if the one we started earlier still runs)
if alive "${OOMLAB_DOCKER_CTR_PIDFILE}" containerd; then
  oomlab_log "our containerd (pid $(cat "${OOMLAB_DOCKER_CTR_PIDFILE}")) still runs"
else
  cat >"${OOMLAB_DOCKER_RUN_DIR}/containerd.toml" <<EOF
# Written by hack/docker-up.sh: the containerd behind oomlab's dockerd. No CRI plugin.
version = 2
root = "${STATE_DIR}/containerd"
state = "${OOMLAB_DOCKER_RUN_DIR}/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "${OOMLAB_DOCKER_CTR_SOCK}"
EOF
  oomlab_log "starting containerd on ${OOMLAB_DOCKER_CTR_SOCK} (log ${STATE_DIR}/containerd.log)"
  # No inherited descriptor but stdio: a lock the caller holds would live as long as the daemon.
  (
    oomlab_close_inherited_fds
    exec setsid nohup containerd --config "${OOMLAB_DOCKER_RUN_DIR}/containerd.toml" \
      >>"${STATE_DIR}/containerd.log" 2>&1 </dev/null
  ) &
  echo $! >"${OOMLAB_DOCKER_CTR_PIDFILE}"
  echo "containerd $(cat "${OOMLAB_DOCKER_CTR_PIDFILE}")" >>"${OOMLAB_DOCKER_MARKER}"
  oomlab_wait_for 30 containerd test -S "${OOMLAB_DOCKER_CTR_SOCK}" ||
    oomlab_die "containerd did not come up; see ${STATE_DIR}/containerd.log"
fi

# 2. dockerd
if alive "${OOMLAB_DOCKERD_PIDFILE}" dockerd; then
  oomlab_log "our dockerd (pid $(cat "${OOMLAB_DOCKERD_PIDFILE}")) runs but does not answer yet: waiting"
else
  dockerd_args=(
    --containerd "${OOMLAB_DOCKER_CTR_SOCK}"
    --pidfile "${OOMLAB_DOCKERD_PIDFILE}"
    --iptables=false --ip-forward=false --ip-masq=false --bridge=none
    --add-runtime "crun=/usr/bin/crun"
  )
  oomlab_log "starting dockerd ${dockerd_args[*]} (log ${STATE_DIR}/dockerd.log)"
  # dockerd writes its own pidfile; take it from $! too, in case it dies before writing.
  (
    oomlab_close_inherited_fds
    exec setsid nohup dockerd "${dockerd_args[@]}" >>"${STATE_DIR}/dockerd.log" 2>&1 </dev/null
  ) &
  pid=$!
  echo "dockerd ${pid}" >>"${OOMLAB_DOCKER_MARKER}"
fi

if ! oomlab_wait_for "${WAIT}" "Docker engine" oomlab_docker info; then
  tail -n 20 "${STATE_DIR}/dockerd.log" >&2 || true
  oomlab_die "dockerd did not answer within ${WAIT}s; see ${STATE_DIR}/dockerd.log"
fi
say_versions
# shellcheck disable=SC2016  # a Go template, not shell
oomlab_log "runtimes: $(oomlab_docker info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}' 2>/dev/null)"
