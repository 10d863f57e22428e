#!/usr/bin/env bash
# Stops the dockerd (and its containerd) that hack/docker-up.sh started, and nothing else:
# an engine someone else started is left running. Containers, images and volumes stay on disk.
#
# Usage: hack/docker-down.sh     (idempotent)
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ ! -f "${OOMLAB_DOCKER_MARKER}" ]]; then
  if oomlab_docker_ok; then
    oomlab_log "the Docker engine that answers was not started by hack/docker-up.sh: leaving it running"
  else
    oomlab_log "no Docker engine started by hack/docker-up.sh: nothing to stop"
  fi
  exit 0
fi

oomlab_need_root "stops dockerd"

stop() { # name pid
  local name="$1" pid="$2" i
  if [[ ! -d "/proc/${pid}" || "$(cat "/proc/${pid}/comm" 2>/dev/null)" != "${name}" ]]; then
    oomlab_log "${name} (pid ${pid}) is already gone"
    return 0
  fi
  oomlab_log "stopping ${name} (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    [[ -d "/proc/${pid}" ]] || { oomlab_log "${name} stopped"; return 0; }
    sleep 0.5
  done
  oomlab_warn "${name} (pid ${pid}) did not stop in 30 s: sending SIGKILL"
  kill -KILL "${pid}" 2>/dev/null || true
}

# dockerd first (it stops its containers), then containerd: the marker's order reversed.
while read -r name pid; do
  [[ -n "${name}" && -n "${pid}" ]] && stop "${name}" "${pid}"
done < <(tac "${OOMLAB_DOCKER_MARKER}")

rm -f "${OOMLAB_DOCKER_MARKER}" "${OOMLAB_DOCKERD_PIDFILE}" "${OOMLAB_DOCKER_CTR_PIDFILE}"
oomlab_log "done: the engine started by hack/docker-up.sh is stopped"
