#!/usr/bin/env bash
# A host swapfile that oomlab owns, for the swap experiments.
#
#   hack/swap.sh on SIZE   create (or resize) and enable ${OOMLAB_STATE}/swapfile, e.g. 2G
#   hack/swap.sh off       disable and delete our swapfile
#   hack/swap.sh status    show all swap on the host, and which of it is ours
#
# Only the swapfile this script created (recorded by a marker file next to it) is ever touched:
# other swap devices and files on the host are left as they are. SIZE is what fallocate takes
# (binary: 2G = 2 GiB, 512M = 512 MiB).
set -euo pipefail

# shellcheck source=hack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SWAPFILE="${OOMLAB_SWAPFILE:-${OOMLAB_STATE}/swapfile}"
MARKER="${SWAPFILE}.oomlab"

usage() {
  sed -n '3,5p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

ours() { [[ -f "${MARKER}" && -f "${SWAPFILE}" ]]; }

active() { # is our swapfile in use?
  local f
  f="$(readlink -f "${SWAPFILE}" 2>/dev/null || echo "${SWAPFILE}")"
  awk 'NR > 1 { print $1 }' /proc/swaps | grep -qxF "${f}"
}

to_bytes() { # fallocate-style size -> bytes
  numfmt --from=iec "$(tr -d 'B' <<<"${1^^}" | sed 's/I$//')"
}

status() {
  oomlab_log "swap on this host (/proc/swaps):"
  sed 's/^/    /' /proc/swaps >&2
  if ours; then
    local state=inactive
    active && state=active
    oomlab_log "ours: ${SWAPFILE} ($(stat -c %s "${SWAPFILE}") bytes, ${state})"
  else
    oomlab_log "ours: none"
  fi
  free -b | awk '/^Swap:/ { printf "swap_total_bytes=%s swap_used_bytes=%s\n", $2, $3 }'
}

swap_off() {
  if ! ours; then
    if [[ -e "${SWAPFILE}" ]]; then
      oomlab_warn "${SWAPFILE} exists but has no ${MARKER}: not ours, left alone"
    else
      oomlab_log "no swapfile of ours: nothing to do"
    fi
    return 0
  fi
  oomlab_need_root "runs swapoff"
  if active; then
    oomlab_run swapoff "${SWAPFILE}"
  fi
  oomlab_run rm -f "${SWAPFILE}" "${MARKER}"
}

swap_on() {
  local size="$1" bytes
  bytes="$(to_bytes "${size}" 2>/dev/null)" || oomlab_die "size '${size}' is not a size (e.g. 2G, 512M)"
  [[ "${bytes}" -ge $((40 * 4096)) ]] || oomlab_die "size '${size}' is too small for a swapfile"
  oomlab_need_root "runs swapon"
  if [[ -e "${SWAPFILE}" ]] && ! ours; then
    oomlab_die "${SWAPFILE} exists but is not ours (no ${MARKER}): refusing to touch it"
  fi
  if ours && [[ "$(stat -c %s "${SWAPFILE}")" -eq "${bytes}" ]]; then
    if active; then
      oomlab_log "our swapfile ${SWAPFILE} (${size}) is already on"
    else
      oomlab_run swapon "${SWAPFILE}"
    fi
    return 0
  fi
  if ours; then
    oomlab_log "our swapfile has another size: recreating it with ${size}"
    swap_off
  fi
  mkdir -p "$(dirname "${SWAPFILE}")"
  # Marker first: if anything below fails, `off` can still clean up.
  printf 'created by hack/swap.sh on %s, size %s\n' "$(date -u +%FT%TZ)" "${size}" >"${MARKER}"
  oomlab_run fallocate -l "${bytes}" "${SWAPFILE}"
  chmod 600 "${SWAPFILE}"
  oomlab_run mkswap "${SWAPFILE}" >/dev/null
  oomlab_run swapon "${SWAPFILE}"
}

case "${1:-}" in
  on)
    [[ $# -eq 2 ]] || usage
    swap_on "$2"
    status
    ;;
  off)
    [[ $# -eq 1 ]] || usage
    swap_off
    status
    ;;
  status)
    [[ $# -eq 1 ]] || usage
    status
    ;;
  *) usage ;;
esac
