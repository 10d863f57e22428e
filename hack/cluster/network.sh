# shellcheck shell=bash
# Part of hack/local-cluster.sh (sourced; runs nothing): the host network. Our bridge and CNI
# config, guards so nothing of ours talks to anything off this host (beside the egress guard of
# hack/egress-guard.sh, which `up` installs first), and their removal: only what `up` made.

ensure_network() {
  if ! ip link show "${OOMLAB_BRIDGE}" >/dev/null 2>&1; then
    log "network: creating bridge ${OOMLAB_BRIDGE} ${OOMLAB_NODE_IP}/${OOMLAB_POD_SUBNET#*/}"
    ip link add "${OOMLAB_BRIDGE}" type bridge
  fi
  ip addr show dev "${OOMLAB_BRIDGE}" | grep "inet ${OOMLAB_NODE_IP}/" >/dev/null ||
    ip addr add "${OOMLAB_NODE_IP}/${OOMLAB_POD_SUBNET#*/}" dev "${OOMLAB_BRIDGE}"
  ip link set "${OOMLAB_BRIDGE}" up
  # Guards, in chains of our own so `down` can remove exactly them.
  iptables -N OOMLAB-INPUT 2>/dev/null || iptables -F OOMLAB-INPUT
  iptables -A OOMLAB-INPUT -i lo -j RETURN
  iptables -A OOMLAB-INPUT -i "${OOMLAB_BRIDGE}" -j RETURN
  iptables -A OOMLAB-INPUT -d "${OOMLAB_POD_SUBNET}" -j DROP
  iptables -C INPUT -j OOMLAB-INPUT 2>/dev/null || iptables -I INPUT 1 -j OOMLAB-INPUT
  iptables -N OOMLAB-FORWARD 2>/dev/null || iptables -F OOMLAB-FORWARD
  iptables -A OOMLAB-FORWARD -i "${OOMLAB_BRIDGE}" ! -o "${OOMLAB_BRIDGE}" -j DROP
  iptables -A OOMLAB-FORWARD -o "${OOMLAB_BRIDGE}" ! -i "${OOMLAB_BRIDGE}" -j DROP
  iptables -C FORWARD -j OOMLAB-FORWARD 2>/dev/null || iptables -I FORWARD 1 -j OOMLAB-FORWARD
  # Pods resolve nothing: no cluster DNS here, and the host's resolver is not for them.
  printf 'nameserver 127.0.0.1\noptions ndots:1 timeout:1 attempts:1\n' | write_if_changed "${OOMLAB_CLUSTER_STATE}/resolv.conf"
  mkdir -p "${CNI_CONF_DIR}" "${OOMLAB_CLUSTER_STATE}/cni/ipam"
  write_if_changed "${CNI_CONF_DIR}/10-oomlab.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "oomlab",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${OOMLAB_BRIDGE}",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${OOMLAB_CLUSTER_STATE}/cni/ipam",
        "ranges": [[{"subnet": "${OOMLAB_POD_SUBNET}", "rangeStart": "${OOMLAB_POD_RANGE_START}", "gateway": "${OOMLAB_NODE_IP}"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
}

# --- removal ------------------------------------------------------------------------------------

# The chains this cluster made in TABLE: ours (OOMLAB-*) and kube-proxy's and the kubelet's
# (KUBE-*) that were not there before the first `up`. The egress guard's chains belong to
# hack/egress-guard.sh and are never among them.
chains_we_made() { # iptables-command table
  local keep="${OOMLAB_CLUSTER_STATE}/iptables-chains.orig"
  [[ -f "${keep}" ]] || keep=/dev/null
  "$1" -w 10 -t "$2" -S 2>/dev/null | awk '$1 == "-N" { print $2 }' |
    grep -E '^(KUBE-|OOMLAB-)' | grep -v '^OOMLAB-EGRESS' | grep -vxF -f "${keep}" || true
}

# Line numbers of the rules in CHAIN that jump (-j or -g) to one of the chains named in the file
# TARGETS, highest first: deleting by number needs no parsing of the rules themselves.
jumps_into() { # iptables-command table chain targets-file
  "$1" -w 10 -t "$2" -S "$3" 2>/dev/null | grep -v '^-[PN] ' |
    awk -v targets="$4" '
      BEGIN { while ((getline t < targets) > 0) wanted[t] = 1 }
      { for (i = 1; i < NF; i++) if (($i == "-j" || $i == "-g") && ($(i + 1) in wanted)) { print NR; next } }' |
    sort -rn
}

remove_chains() { # iptables-command: the chains chains_we_made names, in every loaded table
  local ipt="$1" table chain line list
  oomlab_have "${ipt}" || return 0
  for table in filter nat mangle raw; do
    # Reading a legacy table that is not loaded would create it: look only at loaded ones.
    if [[ "${ipt}" == *legacy* ]] && ! grep -qx "${table}" /proc/net/ip_tables_names 2>/dev/null; then continue; fi
    list="$(mktemp)"
    chains_we_made "${ipt}" "${table}" >"${list}"
    if [[ -s "${list}" ]]; then
      log "down: removing $(wc -l <"${list}") chains from ${ipt} ${table}"
      # Empty ours first (that removes the jumps between them), then the jumps into them left in
      # every other chain, then the chains.
      while read -r chain; do "${ipt}" -w 10 -t "${table}" -F "${chain}" || true; done <"${list}"
      while read -r chain; do
        for line in $(jumps_into "${ipt}" "${table}" "${chain}" "${list}"); do
          "${ipt}" -w 10 -t "${table}" -D "${chain}" "${line}" || true
        done
      done < <("${ipt}" -w 10 -t "${table}" -S 2>/dev/null | awk '$1 == "-P" || $1 == "-N" { print $2 }' | grep -vxF -f "${list}")
      while read -r chain; do "${ipt}" -w 10 -t "${table}" -X "${chain}" || oomlab_warn "could not remove ${table} ${chain}"; done <"${list}"
    fi
    rm -f "${list}"
  done
}

remove_network() {
  remove_chains iptables
  case "$(readlink -f "$(command -v iptables)")" in
    *nft*) remove_chains iptables-legacy ;;
    *legacy*) remove_chains iptables-nft ;;
  esac
  # network namespaces the CRI made (cni-*) that were not there before `up`
  local ns
  for ns in /run/netns/cni-*; do
    [[ -e "${ns}" ]] || continue
    grep -qx "$(basename "${ns}")" "${OOMLAB_CLUSTER_STATE}/netns.orig" 2>/dev/null && continue
    umount "${ns}" 2>/dev/null || umount -l "${ns}" 2>/dev/null || true
    rm -f "${ns}"
  done
  if ip link show "${OOMLAB_BRIDGE}" >/dev/null 2>&1; then
    log "down: deleting bridge ${OOMLAB_BRIDGE}"
    ip link del "${OOMLAB_BRIDGE}"
  fi
}
