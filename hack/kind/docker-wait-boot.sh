#!/usr/bin/env bash
# `docker` for kind when the engine's machine is slow to boot a node (a qemu TCG guest's dockerd):
# after `docker run --name NODE ...` kind gives the node's systemd a fixed 30 s (kind v0.33.0,
# pkg/cluster/internal/providers/docker/provision.go) to print "Reached target ... Multi-User
# System" (or the entrypoint's "detected cgroup v1") in `docker logs`, and fails the create
# otherwise; under emulation systemd can take longer. This shim lets `run` return only once that
# line is in the node's log, or after OOMLAB_KIND_NODE_BOOT_SECONDS (default 600), so kind's own
# check then finds it at once: the same condition, waited for longer, and kind still runs nothing
# in the node before systemd is up. Every other call goes to the real docker unchanged:
# $OOMLAB_REAL_DOCKER. With OOMLAB_KIND_BOOT_LOG set, how long the wait took is appended there.
# With OOMLAB_KIND_NODE_COPY=SRC:DEST, the directory SRC (on this host) is copied to DEST in the
# node once it is up, before kind runs anything in it (kubeadm's patches: hack/kind-up.sh).
# hack/kind-up.sh puts this script on kind's PATH only, as `docker`, for an engine on another
# machine (DOCKER_HOST=tcp://...).
set -euo pipefail

real="${OOMLAB_REAL_DOCKER:?OOMLAB_REAL_DOCKER must name the real docker client}"
[[ "${1:-}" == run ]] || exec "${real}" "$@"

name=""
previous=""
for arg in "$@"; do
  [[ "${previous}" != --name ]] || name="${arg}"
  previous="${arg}"
done
"${real}" "$@"
[[ -n "${name}" ]] || exit 0

# kind's pattern (pkg/cluster/internal/providers/common/cgroups.go), matched on the whole log.
ready='Reached target .*Multi-User System|detected cgroup v1'
limit="${OOMLAB_KIND_NODE_BOOT_SECONDS:-600}"
start=${SECONDS}
until "${real}" logs "${name}" 2>&1 | grep -E "${ready}" >/dev/null; do
  if ((SECONDS - start >= limit)); then
    # kind's own check reports it (and the log) from here
    [[ -z "${OOMLAB_KIND_BOOT_LOG:-}" ]] ||
      echo "node ${name}: no multi-user.target after ${limit} s" >>"${OOMLAB_KIND_BOOT_LOG}"
    exit 0
  fi
  sleep 2
done
[[ -z "${OOMLAB_KIND_BOOT_LOG:-}" ]] ||
  echo "time: node ${name} systemd at multi-user.target after docker run: $((SECONDS - start)) s" \
    >>"${OOMLAB_KIND_BOOT_LOG}"
if [[ -n "${OOMLAB_KIND_NODE_COPY:-}" ]]; then
  "${real}" exec "${name}" mkdir -p "${OOMLAB_KIND_NODE_COPY#*:}"
  "${real}" cp "${OOMLAB_KIND_NODE_COPY%%:*}/." "${name}:${OOMLAB_KIND_NODE_COPY#*:}"
fi
