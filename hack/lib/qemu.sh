# shellcheck shell=bash
# qemu guests (hack/vm-node.sh, hack/vm-engine.sh, hack/kind-vm.sh): boot one from an image
# directory (vmlinuz, initrd.img, cmdline, disk.raw: hack/vm-image.sh, hack/vm-engine-image.sh),
# wait until it answers, stop it. hack/lib.sh sources it; it defines functions and runs nothing.
# A guest's files are named after its state directory STATE: STATE/qemu.pid, STATE/monitor.sock,
# and STATE-serial.log beside it (kept after `down`, for a post-mortem).

# qemu's accelerator: KVM only where the CPU offers it (FACTS: this host's /dev/kvm never boots
# a guest), else TCG.
oomlab_qemu_accel_args() {
  if grep -qwE 'vmx|svm' /proc/cpuinfo && [[ -w /dev/kvm ]]; then
    echo "-accel kvm -cpu host"
  else
    echo "-accel tcg,thread=multi -cpu max"
  fi
}

oomlab_qemu_serial_log() { printf '%s\n' "${1%/}-serial.log"; } # state-dir

# A qcow2 overlay over a guest disk (raw, or qcow2 by its name), so that a run never writes the
# cached image; SIZE grows it.
oomlab_qemu_overlay() { # backing overlay [size]
  local format=raw
  [[ "$1" != *.qcow2 ]] || format=qcow2
  qemu-img create -q -f qcow2 -F "${format}" -b "$1" "$2" ${3:+"$3"}
}

# qemu arguments (one line) for user-mode networking with restrict=on (the guest can send nothing
# off the machine) and forwards from this host's 127.0.0.1, each HOST-PORT:GUEST-PORT.
oomlab_qemu_user_net() { # host-port:guest-port...
  local netdev="user,id=n0,restrict=on" pair
  for pair in "$@"; do netdev+=",hostfwd=tcp:127.0.0.1:${pair%%:*}-:${pair#*:}"; done
  echo "-netdev ${netdev} -device virtio-net-pci,netdev=n0"
}

# Boots a guest in the background: q35, the image's kernel, initrd and command line, DISK as the
# first virtio disk, the serial console to a new STATE-serial.log, then the qemu arguments given
# (network, more disks). OOMLAB_VM_DEBUG=1 puts the guest's journal on the serial log too.
oomlab_qemu_start() { # name image-dir disk cpus memory-mib state-dir [qemu-arg...]
  local name="$1" image="$2" disk="$3" cpus="$4" memory="$5" state="$6" accel cmdline serial
  shift 6
  read -ra accel <<<"$(oomlab_qemu_accel_args)"
  cmdline="$(cat "${image}/cmdline")"
  [[ "${OOMLAB_VM_DEBUG:-0}" != 1 ]] || cmdline+=" systemd.journald.forward_to_console=1"
  serial="$(oomlab_qemu_serial_log "${state}")"
  mkdir -p "${state}"
  rm -f "${serial}"
  oomlab_log "qemu ${name}: ${accel[*]}, ${cpus} CPUs, ${memory} MiB (serial log ${serial})"
  # The daemonized qemu outlives this script and keeps every descriptor it inherits: a lock the
  # caller holds (`flock /tmp/oomlab-live.lock make cluster-up`, or a build lock) would stay
  # held for as long as the guest runs. It gets stdin, stdout and stderr only.
  (
    oomlab_close_inherited_fds
    exec qemu-system-x86_64 -name "${name}" -nodefaults -machine q35 "${accel[@]}" \
      -smp "${cpus}" -m "${memory}" \
      -kernel "${image}/vmlinuz" -initrd "${image}/initrd.img" -append "${cmdline}" \
      -drive "file=${disk},if=virtio,format=qcow2,cache=unsafe" \
      "$@" \
      -display none -vga none -serial "file:${serial}" \
      -monitor "unix:${state}/monitor.sock,server,nowait" \
      -daemonize -pidfile "${state}/qemu.pid"
  )
}

# Closes this (sub)shell's descriptors above 2 (bash's own script descriptor, 255, aside).
oomlab_close_inherited_fds() {
  local fd
  for fd in /proc/"${BASHPID}"/fd/*; do
    fd="${fd##*/}"
    if ((fd > 2 && fd != 255)); then
      eval "exec ${fd}>&-" 2>/dev/null || true
    fi
  done
}

# The pid in a qemu pidfile, if that process runs and is qemu.
oomlab_qemu_pid() { # pidfile
  local pid
  [[ -f "$1" ]] || return 1
  read -r pid <"$1" || return 1
  [[ -n "${pid}" && "$(readlink "/proc/${pid}/exe" 2>/dev/null)" == */qemu-system-* ]] || return 1
  echo "${pid}"
}

# The status line of the guest of STATE: running (with its pid and what STATE/FILE names: the
# image or disk it boots) or stopped, then false.
oomlab_qemu_status() { # state-dir file
  local pid
  if pid="$(oomlab_qemu_pid "$1/qemu.pid")"; then
    echo "qemu            running (pid ${pid}; $2 $(cat "$1/$2" 2>/dev/null))"
  else
    echo "qemu            stopped"
    return 1
  fi
}

# Runs CHECK every second until it succeeds, for at most SECONDS, while the guest of STATE runs.
# When qemu exits or the time runs out: the serial log's tail, then the script dies.
oomlab_qemu_wait() { # state-dir seconds what check-command...
  local state="$1" seconds="$2" what="$3" deadline
  shift 3
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! oomlab_qemu_pid "${state}/qemu.pid" >/dev/null; then
      tail -n 40 "$(oomlab_qemu_serial_log "${state}")" >&2
      oomlab_die "qemu exited while waiting for ${what}"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$(oomlab_qemu_serial_log "${state}")" >&2
      oomlab_die "no ${what} after ${seconds} s"
    fi
    sleep 1
  done
}

# Stops a qemu (TERM, then KILL after 10 s) and returns once it is gone, so the caller can reuse
# its tap, port and files: its disks are throwaway overlays, no clean guest shutdown is needed.
oomlab_qemu_stop() { # pidfile
  local pid
  pid="$(oomlab_qemu_pid "$1")" || return 0
  oomlab_log "stopping qemu (pid ${pid})"
  kill -TERM "${pid}" 2>/dev/null || true
  oomlab_wait_for 10 "qemu (pid ${pid}) to exit on TERM" oomlab_pid_gone "${pid}" && return 0
  kill -KILL "${pid}" 2>/dev/null || true
  oomlab_wait_for 10 "qemu (pid ${pid}) to exit on KILL" oomlab_pid_gone "${pid}" ||
    oomlab_die "qemu (pid ${pid}) survived KILL"
}

oomlab_pid_gone() { [[ ! -d "/proc/$1" ]]; }
