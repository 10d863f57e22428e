#!/usr/bin/env bash
# The egress guard: nothing for (or from) 100.64.0.0/10, the range every oomlab network lives in,
# leaves this host through an interface the project did not create.
#
#   hack/egress-guard.sh up        install it, or repair it (idempotent; counters kept)
#   hack/egress-guard.sh down      remove its own rules and chains, nothing else
#   hack/egress-guard.sh down --if-idle   the same, only when no project interface is left
#   hack/egress-guard.sh status    installed or not, jump positions, what it dropped; exit 1 if absent
#   hack/egress-guard.sh counters  one line per drop rule: NAME PACKETS BYTES (for tests)
#   hack/egress-guard.sh deps      install what the guard and its namespace tests need (iptables, ip)
#
# Why: this host forwards, and its default route leaves the machine, so a packet for a 100.64
# address that no local route covers (an ICMP error to a pod, a service IP without a rule, another
# node's pod subnet) would go out through the default-route interface.
#
# How: two chains of its own in the filter table, each jumped to from position 1 of a built-in
# chain: OOMLAB-EGRESS-OUT (from OUTPUT, host-originated) and OOMLAB-EGRESS-FWD (from FORWARD).
# Each returns for the interfaces the project makes (OOMLAB_EGRESS_ALLOW, iptables wildcards) and
# drops what is left if its destination or source is in 100.64.0.0/10. An allow-list rather than
# "the default-route interface" so that an interface nobody thought of is covered as well.
# The drop rules' packet counters are the guard's counters (no LOG rule: nothing floods the log).
# Filter OUTPUT runs after kube-proxy's DNAT, so service IPs are seen as the pod they lead to.
# `up` puts the jumps back at position 1 when something (kube-proxy) inserted rules above them.
# Works in any network namespace: `ip netns exec NS hack/egress-guard.sh up` guards NS.
# Env: OOMLAB_EGRESS_ALLOW (hack/lib.sh: "lo oomlab+ tap-oomlab+ kindbr+"), OOMLAB_EGRESS_RANGE,
# OOMLAB_EGRESS_KEEP=1 (down leaves the guard in place: for a machine that wants it always).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
source "${HACK_DIR}/lib.sh"

: "${OOMLAB_EGRESS_RANGE:=100.64.0.0/10}"
: "${OOMLAB_IPTABLES:=iptables}"

# built-in chain -> our chain, and the short name the counters use
GUARDS=(OUTPUT:OOMLAB-EGRESS-OUT:out FORWARD:OOMLAB-EGRESS-FWD:fwd)

ipt() { "${OOMLAB_IPTABLES}" -w 10 "$@"; }

# The rules of one guard chain, as iptables-restore lines.
chain_rules() { # chain short-name
  local chain="$1" short="$2" iface
  for iface in ${OOMLAB_EGRESS_ALLOW}; do
    printf -- '-A %s -o %s -m comment --comment "oomlab-egress allow" -j RETURN\n' "${chain}" "${iface}"
  done
  printf -- '-A %s -d %s -m comment --comment "oomlab-egress %s-dst" -j DROP\n' "${chain}" "${OOMLAB_EGRESS_RANGE}" "${short}"
  printf -- '-A %s -s %s -m comment --comment "oomlab-egress %s-src" -j DROP\n' "${chain}" "${OOMLAB_EGRESS_RANGE}" "${short}"
}

chain_exists() { ipt -n -L "$1" >/dev/null 2>&1; }

# What `iptables -S CHAIN` prints when the chain holds exactly chain_rules (normalised by iptables).
chain_current() { ipt -S "$1" 2>/dev/null | grep -v '^-N ' || true; }

# Line numbers of the rules in BUILTIN that jump to CHAIN, highest first.
jump_lines() { # builtin chain
  ipt -n -L "$1" --line-numbers 2>/dev/null | awk -v c="$2" 'NR > 2 && $2 == c { print $1 }' | sort -rn
}

install_chain() { # chain short-name
  local chain="$1" short="$2" wanted
  wanted="$(chain_rules "${chain}" "${short}")"
  if chain_exists "${chain}" && [[ "$(chain_current "${chain}")" == "$(wanted_normalised "${chain}" "${short}")" ]]; then
    return 0
  fi
  oomlab_log "egress guard: writing chain ${chain}"
  # One iptables-restore transaction: the chain is created or replaced atomically, so there is
  # no moment at which a jump leads into a half-written chain.
  printf '*filter\n:%s - [0:0]\n%s\nCOMMIT\n' "${chain}" "${wanted}" | "${OOMLAB_IPTABLES}-restore" -w 10 --noflush
}

# chain_rules as `iptables -S` prints them (it drops the quotes of one-word comments, keeps others).
wanted_normalised() { # chain short-name
  chain_rules "$1" "$2" | sed -E 's/--comment "([^ "]*)"/--comment \1/'
}

install_jump() { # builtin chain
  local builtin="$1" chain="$2" first line
  first="$(ipt -n -L "${builtin}" --line-numbers | awk 'NR == 3 { print $2 }')"
  if [[ "${first}" == "${chain}" ]]; then
    # Already first; remove any later duplicates.
    for line in $(jump_lines "${builtin}" "${chain}"); do
      [[ "${line}" == 1 ]] || ipt -D "${builtin}" "${line}"
    done
    return 0
  fi
  oomlab_log "egress guard: jump ${builtin} -> ${chain} at position 1"
  # Insert first, then delete the old jumps, so the guard is never absent in between.
  ipt -I "${builtin}" 1 -j "${chain}"
  for line in $(jump_lines "${builtin}" "${chain}"); do
    [[ "${line}" == 1 ]] || ipt -D "${builtin}" "${line}"
  done
}

cmd_deps() {
  oomlab_need_root "installs packages"
  local missing=()
  oomlab_have "${OOMLAB_IPTABLES}" && oomlab_have iptables-restore || missing+=(iptables)
  oomlab_have ip || missing+=(iproute2)
  if ((${#missing[@]})); then oomlab_apt_install "${missing[@]}"; fi
}

cmd_up() {
  oomlab_need_root "changes iptables"
  cmd_deps
  local g builtin chain short
  for g in "${GUARDS[@]}"; do
    IFS=: read -r builtin chain short <<<"${g}"
    install_chain "${chain}" "${short}"
    install_jump "${builtin}" "${chain}"
  done
  oomlab_log "egress guard: up (allowed interfaces: ${OOMLAB_EGRESS_ALLOW})"
}

cmd_down() { # [--if-idle]
  oomlab_need_root "changes iptables"
  oomlab_have "${OOMLAB_IPTABLES}" || return 0
  local g builtin chain short line left
  if [[ "${OOMLAB_EGRESS_KEEP:-0}" == 1 ]]; then
    oomlab_log "egress guard: kept (OOMLAB_EGRESS_KEEP=1)"
    return 0
  fi
  if [[ "${1:-}" == --if-idle ]]; then
    left="$(oomlab_project_interfaces | tr '\n' ' ')"
    if [[ -n "${left}" ]]; then
      oomlab_log "egress guard: kept, project interfaces remain: ${left}"
      return 0
    fi
  fi
  for g in "${GUARDS[@]}"; do
    IFS=: read -r builtin chain short <<<"${g}"
    for line in $(jump_lines "${builtin}" "${chain}"); do ipt -D "${builtin}" "${line}"; done
    if chain_exists "${chain}"; then
      oomlab_log "egress guard: removing chain ${chain}"
      ipt -F "${chain}"
      ipt -X "${chain}"
    fi
  done
}

# NAME PACKETS BYTES for each drop rule, e.g. "out-dst 3 252".
cmd_counters() {
  local g builtin chain short
  for g in "${GUARDS[@]}"; do
    IFS=: read -r builtin chain short <<<"${g}"
    chain_exists "${chain}" || continue
    ipt -n -v -x -L "${chain}" |
      awk '/DROP/ && match($0, /oomlab-egress [a-z]+-[a-z]+/) { print substr($0, RSTART + 14, RLENGTH - 14), $1, $2 }'
  done
}

cmd_status() {
  local g builtin chain short rc=0 first
  for g in "${GUARDS[@]}"; do
    IFS=: read -r builtin chain short <<<"${g}"
    if ! chain_exists "${chain}"; then
      printf 'egress guard %-18s absent\n' "${chain}"
      rc=1
      continue
    fi
    first="$(ipt -n -L "${builtin}" --line-numbers | awk 'NR == 3 { print $2 }')"
    if [[ "${first}" == "${chain}" ]]; then
      printf 'egress guard %-18s in place (%s position 1)\n' "${chain}" "${builtin}"
    elif [[ -n "$(jump_lines "${builtin}" "${chain}")" ]]; then
      printf 'egress guard %-18s jumped to below position 1 of %s: run up to repair\n' "${chain}" "${builtin}"
      rc=1
    else
      printf 'egress guard %-18s not jumped to from %s: run up to repair\n' "${chain}" "${builtin}"
      rc=1
    fi
  done
  cmd_counters | awk '{ printf "  dropped %-8s %s packets, %s bytes\n", $1, $2, $3 }'
  printf '  allowed interfaces: %s; default route via: %s\n' "${OOMLAB_EGRESS_ALLOW}" \
    "$(ip -4 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1) }' | sort -u | tr '\n' ' ')"
  return "${rc}"
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  counters) cmd_counters ;;
  deps) cmd_deps ;;
  *) sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
