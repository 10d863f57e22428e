#!/usr/bin/env python3
"""memhog: allocate memory in a known pattern and say so, one JSON line at a time.

Usage: memhog MODE [options], MODE one of bulk, streaming, leak, spike.

  bulk       allocate --size in chunks of --chunk, keep them all until the end
  streaming  touch --size bytes chunk by chunk, keeping at most --window chunks
  leak       grow by --step every --interval seconds up to --size
  spike      hold --base, then briefly add (--size - --base) at once, release it

--reaccess N (every mode): once allocated, touch the memory still held again, N
passes over every page (a write per page), as a job that re-reads its data does.
Under a memory limit with swap, each pass swaps the working set back in.

Sizes are binary (Ki, Mi, Gi, Ti, e.g. 500Mi, 1.5Gi) or a plain number of bytes.
Decimal or one-letter units (500m, 500M, 500MB, 1g) are rejected: they mean
different things to Docker and to Kubernetes.

Every page allocated is written to, so the memory is resident, not just
reserved. Memory is taken in segments of at most --report-every bytes, and a
progress line follows every segment that completes a chunk or brings the bytes
touched since the last line to --report-every.

stdout carries one JSON object per line, written and flushed one by one:
  start     size_bytes, pid and the parsed parameters
  progress  phase (allocate|release|steady|spike|hold|reaccess), allocated_bytes
            (live now), processed_bytes (touched while allocating, cumulative);
            reaccess lines add reaccess_pass (1..N) and reaccessed_bytes (cumulative);
            on cgroup v2 every progress line adds swap_limit_bytes (memory.swap.max
            read at that moment, null = max: an in-place resize can change it)
  summary   status (completed|memory_error|terminated), allocated_bytes,
            processed_bytes, peak_allocated_bytes, peak_rss_bytes (VmHWM), elapsed_s,
            touch_s (seconds spent allocating and touching), allocate_s (wall seconds
            of the mode's allocation pattern), reaccess_passes, reaccess_s (wall
            seconds of all passes, null when none ran), reaccess_pass_s (per pass)
The start and summary lines also carry `cgroup`: the memory cgroup's version,
path, limits and usage as seen from inside, and `stat`: its memory.stat fields
about faults and swap (null if there is no cgroup); `vmstat`: the kernel's
system-wide pswpin, pswpout (pages) and pgmajfault; `majflt`: this process's
major faults. Counters are raw: the reader subtracts start from summary.
Every line also has event, elapsed_s, rss_bytes (VmRSS, null if unknown), mode.

Exit codes: 0 completed, 2 bad arguments, 3 MemoryError, 143 SIGTERM.
A kernel OOM kill is SIGKILL (137 in a container); the last progress line then
tells how far the program got.

Only the part of the standard library that Debian's python3-minimal ships is
used (no json there: lines are encoded by hand).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import os
import re
import signal
import sys
import time

PROG = "memhog"
MODES = ("bulk", "streaming", "leak", "spike")

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_MEMORY_ERROR = 3
EXIT_TERMINATED = 128 + signal.SIGTERM

_UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
_BINARY_SIZE = re.compile(r"([0-9]+)(?:\.([0-9]+))?(Ki|Mi|Gi|Ti)")
_PLAIN_BYTES = re.compile(r"[0-9]+")
# A number followed by letters, as in 500m, 500M, 500MB, 1g, 1GB, 1gi, 1KiB.
_UNIT_LIKE = re.compile(r"[0-9]+(?:\.[0-9]*)?\s*[A-Za-z]+")

try:
    PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
except (ValueError, OSError, AttributeError):  # pragma: no cover - Linux has it
    PAGE_SIZE = 4096


class UsageError(Exception):
    """A bad argument value; the message is shown as is, exit code 2."""


class Terminated(Exception):
    """SIGTERM arrived."""


# --------------------------------------------------------------------------
# argument values


def parse_size(text: str, option: str = "--size") -> int:
    """Return the number of bytes that *text* names, or raise UsageError.

    Accepted: a plain number of bytes (``1048576``) or a number with a binary
    unit (``500Mi``, ``1.5Gi``) that comes to a whole number of bytes.
    """
    if _PLAIN_BYTES.fullmatch(text):
        value = int(text)
    else:
        m = _BINARY_SIZE.fullmatch(text)
        if m is None:
            if text.startswith("-") and _PLAIN_BYTES.fullmatch(text[1:] or "x"):
                raise UsageError(f"{PROG}: {option} {text!r} must be greater than zero")
            if _UNIT_LIKE.fullmatch(text):
                raise UsageError(
                    f"{PROG}: {option} {text!r} is ambiguous: "
                    "use binary units like 500Mi or a plain number of bytes"
                )
            raise UsageError(
                f"{PROG}: {option} {text!r} is not a size: "
                "use binary units like 500Mi or a plain number of bytes"
            )
        whole, frac, unit = m.group(1), m.group(2) or "", m.group(3)
        scale = 10 ** len(frac)
        numerator = (int(whole) * scale + int(frac or "0")) * _UNITS[unit]
        if numerator % scale:
            raise UsageError(f"{PROG}: {option} {text!r} is not a whole number of bytes")
        value = numerator // scale
    if value <= 0:
        raise UsageError(f"{PROG}: {option} {text!r} must be greater than zero")
    return value


def parse_seconds(text: str, option: str) -> float:
    """A finite, non-negative number of seconds, or UsageError."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{PROG}: {option} {text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{PROG}: {option} {text!r} must be a finite number >= 0")
    return value


def parse_count(text: str, option: str, minimum: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise UsageError(f"{PROG}: {option} {text!r} is not a whole number") from None
    if value < minimum:
        raise UsageError(f"{PROG}: {option} {text!r} must be >= {minimum}")
    return value


# --------------------------------------------------------------------------
# output


def _json_str(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def to_json(value: object) -> str:
    """Encode None, bools, ints, finite floats, str, lists and dicts as JSON."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "null"
        return repr(value)
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json_str(str(k))}: {to_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def write_line(text: str) -> None:
    """Write one line to fd 1 at once, bypassing Python's buffers."""
    data = (text + "\n").encode("utf-8")
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    while data:
        try:
            n = os.write(1, data)
        except InterruptedError:  # pragma: no cover - PEP 475 retries already
            continue
        except BrokenPipeError:
            return
        data = data[n:]


def read_status_bytes(*keys: str) -> dict[str, int | None]:
    """VmRSS, VmHWM, ... from /proc/self/status, in bytes (None if unknown)."""
    found: dict[str, int | None] = {k: None for k in keys}
    try:
        with open("/proc/self/status", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return found
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in found:
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                found[name] = int(parts[0]) * 1024
    return found


_CGROUP_V1_FILES = {
    "memory_limit_bytes": "memory.limit_in_bytes",
    "memsw_limit_bytes": "memory.memsw.limit_in_bytes",
    "memory_usage_bytes": "memory.usage_in_bytes",
    "memory_peak_bytes": "memory.max_usage_in_bytes",
    "memsw_usage_bytes": "memory.memsw.usage_in_bytes",
    "memsw_peak_bytes": "memory.memsw.max_usage_in_bytes",
}
_CGROUP_V2_FILES = {
    "memory_limit_bytes": "memory.max",
    "swap_limit_bytes": "memory.swap.max",
    "memory_usage_bytes": "memory.current",
    "memory_peak_bytes": "memory.peak",
    "swap_usage_bytes": "memory.swap.current",
    "swap_peak_bytes": "memory.swap.peak",
    "memory_min_bytes": "memory.min",
    "memory_low_bytes": "memory.low",
    "memory_high_bytes": "memory.high",
}
_STAT_KEYS = (
    "pgfault", "pgmajfault", "pswpin", "pswpout", "swap", "swapcached",
    "workingset_refault_anon", "anon_thp", "thp_swpout",
)  # fmt: skip
"""memory.stat fields about faults and swap: v1 has pgmajfault and swap (bytes in swap now);
v2 has pswpin/pswpout (pages) on kernels from 6.12."""
_VMSTAT_KEYS = ("pswpin", "pswpout", "pgmajfault")
_UNLIMITED_V1 = 1 << 62  # cgroup v1 says "no limit" with a number near 2**63


def cgroup_memory() -> dict[str, object] | None:
    """This process's memory cgroup as it sees it: version, path, limits and usage.

    v1 keys: memory_limit_bytes, memsw_limit_bytes (memory+swap), memory_usage_bytes,
    memory_peak_bytes, memsw_usage_bytes, memsw_peak_bytes. v2 keys: memory_limit_bytes,
    swap_limit_bytes (swap alone), memory_usage_bytes, memory_peak_bytes, swap_usage_bytes,
    swap_peak_bytes, and Memory QoS's memory_min_bytes, memory_low_bytes, memory_high_bytes.
    A limit of null means unlimited (max); a file that cannot be read is left out.
    None if no memory cgroup is found.
    """
    found = _memory_cgroup()
    if found is None:
        return None
    version, directory, files, path = found
    info: dict[str, object] = {"version": version, "path": path}
    for key, name in files.items():
        read, value = _read_limit(os.path.join(directory, name), version, key)
        if read:
            info[key] = value
    info["stat"] = read_flat_keyed(os.path.join(directory, "memory.stat"), _STAT_KEYS)
    return info


def _read_limit(path: str, version: int, key: str) -> tuple[bool, int | None]:
    """(readable, value) of one cgroup file: None for max (or v1's near-2**63 "no limit")."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read().strip()
    except OSError:
        return False, None
    if text == "max":
        return True, None
    if not text.isdigit():
        return False, None
    value = int(text)
    unlimited = version == 1 and key.endswith("_limit_bytes") and value >= _UNLIMITED_V1
    return True, None if unlimited else value


_CGROUP_FOUND: list[tuple[int, str, dict[str, str], str] | None] = []


def _memory_cgroup() -> tuple[int, str, dict[str, str], str] | None:
    """(version, directory, files, path) of this process's memory cgroup, found once."""
    if not _CGROUP_FOUND:
        _CGROUP_FOUND.append(_find_memory_cgroup())
    return _CGROUP_FOUND[0]


def live_swap_limit() -> dict[str, object]:
    """``swap_limit_bytes`` read now (cgroup v2 only; null = max): progress lines carry it, so
    a swap limit changed while the workload runs (an in-place resize) shows when it happens."""
    found = _memory_cgroup()
    if found is None or found[0] != 2:
        return {}
    read, value = _read_limit(os.path.join(found[1], "memory.swap.max"), 2, "swap_limit_bytes")
    return {"swap_limit_bytes": value} if read else {}


def _find_memory_cgroup() -> tuple[int, str, dict[str, str], str] | None:
    try:
        with open("/proc/self/cgroup", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    v1_path = v2_path = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if "memory" in parts[1].split(","):
            v1_path = parts[2]
        elif parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
    if v1_path is not None:
        version, mount, files, path = 1, "/sys/fs/cgroup/memory", _CGROUP_V1_FILES, v1_path
    elif v2_path is not None and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        version, mount, files, path = 2, "/sys/fs/cgroup", _CGROUP_V2_FILES, v2_path
    else:
        return None
    # In a container the cgroup is usually mounted at the root of the hierarchy.
    directory = mount + path.rstrip("/")
    if not os.path.exists(os.path.join(directory, next(iter(files.values())))):
        directory = mount
    return version, directory, files, path


def read_flat_keyed(path: str, keys: tuple[str, ...]) -> dict[str, int] | None:
    """``name value`` lines (memory.stat, /proc/vmstat), only *keys*; None if unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in keys and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    return found


def process_major_faults() -> int | None:
    """majflt of /proc/self/stat (field 12; the command name before it may hold spaces)."""
    try:
        with open("/proc/self/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()
        return int(fields[9])
    except (OSError, IndexError, ValueError):
        return None


def swap_counters() -> dict[str, object]:
    """What the start and summary lines carry for measuring swap traffic."""
    return {
        "vmstat": read_flat_keyed("/proc/vmstat", _VMSTAT_KEYS),
        "majflt": process_major_faults(),
    }


# --------------------------------------------------------------------------
# the workload


class Hog:
    """Allocates, touches, holds and frees memory; reports as it goes."""

    def __init__(self, mode: str, report_every: int) -> None:
        self.mode = mode
        self.report_every = report_every
        self.t0 = time.monotonic()
        self.allocated = 0  # bytes live now
        self.processed = 0  # bytes touched, cumulative
        self.peak_allocated = 0
        self.touch_s = 0.0  # time spent allocating + touching
        self.allocate_s: float | None = None  # wall time of the allocation pattern
        self.reaccess_pass_s: list[float] = []
        self.reaccessed = 0  # bytes touched again, cumulative
        self._unreported = 0
        self._page_mark = bytes([0x5A]) * (report_every // PAGE_SIZE + 2)

    # -- output
    def elapsed(self) -> float:
        return round(time.monotonic() - self.t0, 6)

    def emit(self, event: str, **fields: object) -> None:
        line = {
            "event": event,
            "elapsed_s": self.elapsed(),
            "rss_bytes": read_status_bytes("VmRSS")["VmRSS"],
            "mode": self.mode,
        }
        line.update(fields)
        write_line(to_json(line))

    def progress(self, phase: str) -> None:
        self._unreported = 0
        self.emit(
            "progress",
            phase=phase,
            allocated_bytes=self.allocated,
            processed_bytes=self.processed,
            **live_swap_limit(),
        )

    # -- memory
    def _segment(self, n: int) -> bytearray:
        """n bytes, every page written to."""
        buf = bytearray(n)  # CPython zero-fills it with memset: pages faulted in
        npages = (n + PAGE_SIZE - 1) // PAGE_SIZE
        # One byte per page, explicitly, so residency never depends on how
        # bytearray() happens to be implemented.
        mark = self._page_mark
        if npages > len(mark):
            mark = self._page_mark = bytes([0x5A]) * npages
        memoryview(buf)[::PAGE_SIZE] = mark[:npages]
        return buf

    def allocate(self, nbytes: int, phase: str) -> list[bytearray]:
        """Allocate and touch *nbytes* as one unit (a chunk, a step, a spike).

        Progress lines come after a segment that brings the bytes touched
        since the last line to report_every, and after the last segment.
        The segments are returned; dropping them releases the unit.
        """
        held: list[bytearray] = []
        left = nbytes
        while left > 0:
            n = min(self.report_every, left)
            t = time.monotonic()
            held.append(self._segment(n))
            self.touch_s += time.monotonic() - t
            left -= n
            self.allocated += n
            self.processed += n
            self._unreported += n
            if self.allocated > self.peak_allocated:
                self.peak_allocated = self.allocated
            if left == 0 or self._unreported >= self.report_every:
                self.progress(phase)
        return held

    def reaccess(self, keep: list, passes: int) -> None:
        """Write one byte on every page of every segment still held, *passes* times."""
        segments = list(_segments(keep))
        for index in range(1, passes + 1):
            started = time.monotonic()
            mark = bytes([index % 251 + 1])
            for buf in segments:
                npages = (len(buf) + PAGE_SIZE - 1) // PAGE_SIZE
                memoryview(buf)[::PAGE_SIZE] = mark * npages
                self.reaccessed += len(buf)
                self._unreported += len(buf)
                if self._unreported >= self.report_every:
                    self._reaccess_progress(index)
            self.reaccess_pass_s.append(round(time.monotonic() - started, 6))
            if self._unreported or not segments:
                self._reaccess_progress(index)

    def _reaccess_progress(self, index: int) -> None:
        self._unreported = 0
        self.emit(
            "progress",
            phase="reaccess",
            allocated_bytes=self.allocated,
            processed_bytes=self.processed,
            reaccess_pass=index,
            reaccessed_bytes=self.reaccessed,
            **live_swap_limit(),
        )

    def release(self, held: list[bytearray], report: bool = True) -> None:
        freed = sum(len(b) for b in held)
        held.clear()
        self.allocated -= freed
        if report:
            self.progress("release")

    def pause(self, seconds: float, phase: str) -> None:
        self.progress(phase)
        if seconds > 0:
            time.sleep(seconds)

    def summary(self, status: str, exit_code: int, **extra: object) -> None:
        status_bytes = read_status_bytes("VmRSS", "VmHWM")
        fields: dict[str, object] = {
            "status": status,
            "exit_code": exit_code,
            "allocated_bytes": self.allocated,
            "processed_bytes": self.processed,
            "peak_allocated_bytes": self.peak_allocated,
            "peak_rss_bytes": status_bytes["VmHWM"],
            "touch_s": round(self.touch_s, 6),
            "allocate_s": self.allocate_s,
            "reaccess_passes": len(self.reaccess_pass_s),
            "reaccess_s": round(sum(self.reaccess_pass_s), 6) if self.reaccess_pass_s else None,
            "reaccess_pass_s": self.reaccess_pass_s,
            "cgroup": cgroup_memory(),
            **swap_counters(),
        }
        fields.update(extra)
        self.emit("summary", **fields)


def _segments(held: object) -> list[bytearray]:
    """Every bytearray inside the nested lists (and deques) a mode keeps."""
    if isinstance(held, bytearray):
        return [held]
    found: list[bytearray] = []
    if isinstance(held, (list, collections.deque)):
        for item in held:
            found.extend(_segments(item))
    return found


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """ceil(total/chunk) sizes, all equal to chunk but a smaller last one."""
    full, rest = divmod(total, chunk)
    return [chunk] * full + ([rest] if rest else [])


def run_bulk(hog: Hog, a: argparse.Namespace, keep: list) -> None:
    for n in chunk_sizes(a.size, a.chunk):
        keep.append(hog.allocate(n, "allocate"))


def run_streaming(hog: Hog, a: argparse.Namespace, keep: list) -> None:
    window: collections.deque[list[bytearray]] = collections.deque()
    keep.append(window)
    for n in chunk_sizes(a.size, a.chunk):
        if len(window) >= a.window:
            hog.release(window.popleft())
        window.append(hog.allocate(n, "allocate"))


def run_leak(hog: Hog, a: argparse.Namespace, keep: list) -> None:
    steps = chunk_sizes(a.size, a.step)
    for i, n in enumerate(steps):
        keep.append(hog.allocate(n, "allocate"))
        if i + 1 < len(steps) and a.interval > 0:
            time.sleep(a.interval)


def run_spike(hog: Hog, a: argparse.Namespace, keep: list) -> None:
    keep.append(hog.allocate(a.base, "allocate"))
    hog.pause(a.steady, "steady")
    spike = hog.allocate(a.size - a.base, "spike")
    if a.spike_seconds > 0:
        time.sleep(a.spike_seconds)
    hog.release(spike)
    hog.pause(a.steady, "steady")


RUNNERS = {
    "bulk": run_bulk,
    "streaming": run_streaming,
    "leak": run_leak,
    "spike": run_spike,
}


# --------------------------------------------------------------------------
# command line


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{PROG}: {message}\n")
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--size", default="1000Mi", help="total (peak) bytes, e.g. 1000Mi (default 1000Mi)"
    )
    common.add_argument(
        "--hold", default="0", help="seconds to hold the memory at the end (default 0)"
    )
    common.add_argument(
        "--reaccess",
        default="0",
        help="passes over the held memory after allocating (default 0)",
    )
    common.add_argument(
        "--report-every",
        default="50Mi",
        help="a progress line at least every this many bytes (default 50Mi)",
    )

    parser = _Parser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="mode", metavar="MODE", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("bulk", parents=[common], help="N chunks, all held to the end")
    p.add_argument("--chunk", default="500Mi", help="chunk size (default 500Mi)")

    p = sub.add_parser("streaming", parents=[common], help="chunks through a bounded window")
    p.add_argument("--chunk", default="50Mi", help="chunk size (default 50Mi)")
    p.add_argument("--window", default="2", help="chunks alive at once (default 2)")

    p = sub.add_parser("leak", parents=[common], help="grow by a step every interval")
    p.add_argument("--step", default="50Mi", help="growth per step (default 50Mi)")
    p.add_argument("--interval", default="0.2", help="seconds between steps (default 0.2)")

    p = sub.add_parser("spike", parents=[common], help="steady base, one short spike")
    p.add_argument("--base", default="100Mi", help="steady memory (default 100Mi)")
    p.add_argument("--steady", default="1.0", help="seconds steady before and after (default 1.0)")
    p.add_argument("--spike-seconds", default="0.5", help="seconds the spike is held (default 0.5)")
    return parser


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, dict[str, object]]:
    """Parse and validate; returns the namespace (sizes in bytes) and the
    parameters to report in the start line. Raises UsageError."""
    a = build_parser().parse_args(argv)
    a.size = parse_size(a.size, "--size")
    a.hold = parse_seconds(a.hold, "--hold")
    a.report_every = parse_size(a.report_every, "--report-every")
    a.reaccess = parse_count(a.reaccess, "--reaccess", 0)
    params: dict[str, object] = {"size_bytes": a.size}
    if a.mode in ("bulk", "streaming"):
        a.chunk = parse_size(a.chunk, "--chunk")
        params["chunk_bytes"] = a.chunk
        params["chunks"] = len(chunk_sizes(a.size, a.chunk))
    if a.mode == "streaming":
        a.window = parse_count(a.window, "--window", 1)
        params["window"] = a.window
        params["expected_peak_bytes"] = min(a.size, a.window * a.chunk)
    elif a.mode == "leak":
        a.step = parse_size(a.step, "--step")
        a.interval = parse_seconds(a.interval, "--interval")
        params["step_bytes"] = a.step
        params["interval_s"] = a.interval
    elif a.mode == "spike":
        a.base = parse_size(a.base, "--base")
        a.steady = parse_seconds(a.steady, "--steady")
        a.spike_seconds = parse_seconds(a.spike_seconds, "--spike-seconds")
        if a.base >= a.size:
            raise UsageError(
                f"{PROG}: --base ({a.base} bytes) must be smaller than --size ({a.size} bytes)"
            )
        params["base_bytes"] = a.base
        params["spike_bytes"] = a.size - a.base
        params["steady_s"] = a.steady
        params["spike_s"] = a.spike_seconds
    params.setdefault("expected_peak_bytes", a.size)
    params["hold_s"] = a.hold
    params["reaccess"] = a.reaccess
    params["report_every_bytes"] = a.report_every
    params["page_size"] = PAGE_SIZE
    return a, params


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    try:
        a, params = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        sys.stderr.write(f"{e}\n")
        return EXIT_USAGE

    # As PID 1 in a container, SIGTERM would otherwise be ignored.
    signal.signal(signal.SIGTERM, _on_sigterm)

    hog = Hog(a.mode, a.report_every)
    hog.emit(
        "start",
        pid=os.getpid(),
        python=".".join(str(x) for x in sys.version_info[:3]),
        **params,
        cgroup=cgroup_memory(),
        **swap_counters(),
    )
    keep: list = []
    try:
        try:
            started = time.monotonic()
            RUNNERS[a.mode](hog, a, keep)
            hog.allocate_s = round(time.monotonic() - started, 6)
            if a.reaccess:
                hog.reaccess(keep, a.reaccess)
            if a.hold > 0:
                hog.pause(a.hold, "hold")
        except MemoryError:
            # Free first so that reporting has room; report what was live.
            keep.clear()
            hog.summary("memory_error", EXIT_MEMORY_ERROR, error="MemoryError while allocating")
            return EXIT_MEMORY_ERROR
        hog.summary("completed", EXIT_OK)
        return EXIT_OK
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hog.summary("terminated", EXIT_TERMINATED, error="SIGTERM")
        return EXIT_TERMINATED


if __name__ == "__main__":
    sys.exit(main())
