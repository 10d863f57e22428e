#!/usr/bin/env bash
# `docker` for kind on a host whose capability bounding set lacks CAP_SYS_RESOURCE: there Docker
# (20.10) gives a --privileged container every capability it knows, and the container fails to
# start ("unable to apply caps: operation not permitted"). hack/kind-up.sh puts this script on
# kind's PATH only, as `docker`, when that is the case.
#   run/create --privileged -> every capability the host can grant, host /proc and /sys paths
#                              unmasked, /dev/kmsg, and every device in the device cgroup;
#   exec --privileged       -> a plain exec (the node already has those capabilities).
# The node image (hack/kind-node-image.sh) remounts the then read-only cgroup mounts read-write
# and does without OOM score adjustments below 0. Everything else goes to the real docker
# unchanged: $OOMLAB_REAL_DOCKER.
set -euo pipefail

real="${OOMLAB_REAL_DOCKER:?OOMLAB_REAL_DOCKER must name the real docker client}"

# Capability names by bit number, as far as Docker 20.10 knows them (0-37).
CAPS=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
  NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO
  SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME
  SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG
  WAKE_ALARM BLOCK_SUSPEND AUDIT_READ)

# --privileged, minus what the host's bounding set does not have.
privileged_substitute() {
  local bnd bit
  bnd="$(awk '$1=="CapBnd:"{print $2}' /proc/self/status)"
  for bit in "${!CAPS[@]}"; do
    if (((16#${bnd} >> bit) & 1)); then
      printf '%s\n' --cap-add "${CAPS[bit]}"
    fi
  done
  printf '%s\n' --security-opt systempaths=unconfined --device /dev/kmsg \
    --device-cgroup-rule 'a *:* rwm'
}

command=""
args=()
for arg in "$@"; do
  if [[ -z "${command}" && "${arg}" != -* ]]; then
    command="${arg}"
  fi
  if [[ "${arg}" == --privileged ]]; then
    case "${command}" in
      run | create)
        mapfile -t substitute < <(privileged_substitute)
        args+=("${substitute[@]}")
        continue
        ;;
      exec) continue ;;
    esac
  fi
  args+=("${arg}")
done
exec "${real}" "${args[@]}"
