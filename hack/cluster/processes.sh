# shellcheck shell=bash
# Part of hack/local-cluster.sh (sourced; runs nothing): the cluster's host processes. One pid
# file per component under ${PIDS}; a pid counts only while it still runs the same binary.

pid_of() { # component -> pid if running
  local f="${PIDS}/$1.pid" pid exe
  [[ -f "${f}" ]] || return 1
  read -r pid exe <"${f}" || return 1
  [[ -n "${pid}" && -d "/proc/${pid}" ]] || return 1
  [[ "$(readlink "/proc/${pid}/exe" 2>/dev/null)" == "${exe}" ]] || return 1
  echo "${pid}"
}

start_daemon() { # component binary args...
  local name="$1" bin="$2"; shift 2
  if pid_of "${name}" >/dev/null; then
    log "${name}: already running (pid $(pid_of "${name}"))"
    return
  fi
  mkdir -p "${LOGS}" "${PIDS}"
  log "${name}: starting (log ${LOGS}/${name}.log)"
  # setsid: the daemon leaves this shell's session, so it outlives the calling terminal. It
  # inherits no descriptor but its log: a lock held by the caller (flock ... make cluster-up)
  # would otherwise stay held for as long as the daemon runs (hack/lib/qemu.sh).
  (
    oomlab_close_inherited_fds
    exec setsid "${bin}" "$@" >>"${LOGS}/${name}.log" 2>&1 </dev/null
  ) &
  local pid=$!
  echo "${pid} $(readlink -f "${bin}")" >"${PIDS}/${name}.pid"
  sleep 1
  # Until it runs the binary: on a loaded machine the forked shell may not have exec'd it yet,
  # which is not an exit. Gone from /proc is.
  local i
  for ((i = 0; i < 20; i++)); do
    pid_of "${name}" >/dev/null && return 0
    [[ -d "/proc/${pid}" ]] || break
    sleep 0.5
  done
  tail -n 30 "${LOGS}/${name}.log" >&2
  die "${name} exited at once (or never became ${bin} within 11 s)"
}

stop_daemon() { # component
  local name="$1" pid i
  pid="$(pid_of "${name}")" || { rm -f "${PIDS}/${name}.pid"; return 0; }
  log "${name}: stopping pid ${pid}"
  kill -TERM "${pid}" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    [[ -d "/proc/${pid}" ]] || break
    sleep 0.5
  done
  if [[ -d "/proc/${pid}" ]]; then kill -KILL "${pid}" 2>/dev/null || true; fi
  rm -f "${PIDS}/${name}.pid"
}

# Writes stdin to a file only if the content differs: a running kube-proxy exits when its
# config file is touched, so a second `up` must leave unchanged files alone.
write_if_changed() { # file
  local tmp
  tmp="$(mktemp "$1.XXXXXX")"
  cat >"${tmp}"
  if cmp -s "${tmp}" "$1"; then rm -f "${tmp}"; else mv -f "${tmp}" "$1"; fi
}

wait_for() { # description seconds command...
  local what="$1" secs="$2"
  shift 2
  oomlab_wait_for "${secs}" "${what}" "$@" || die "timed out after ${secs}s waiting for ${what} (logs: ${LOGS})"
}
