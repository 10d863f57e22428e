"""The workload (``workloads/memhog.py``) as oomlab sees it: a spec, its arguments, its output.

memhog knows nothing of oomlab; its contract is its command line and its JSON lines. This module
is the only place that speaks that contract.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from oomlab.rules.results import Progress, SwapActivity
from oomlab.rules.units import MiB, SizeError, format_binary, parse_binary_size

DEFAULT_IMAGE = "oomlab/memhog:dev"

INTERPRETER_OVERHEAD_BYTES = 12 * MiB
"""What python3 itself holds on top of the workload's buffers (measured: see README)."""

# memhog's exit codes (its contract, stated in workloads/memhog.py); an OOM kill is the kernel's
# SIGKILL, not one of these.
EXIT_COMPLETED = 0
EXIT_BAD_ARGUMENTS = 2
EXIT_MEMORY_ERROR = 3
EXIT_TERMINATED = 143

_EXIT_MEANINGS = {
    EXIT_BAD_ARGUMENTS: "the workload rejected its arguments",
    EXIT_MEMORY_ERROR: "the workload hit a MemoryError (Python could not allocate) and stopped "
    "itself",
    EXIT_TERMINATED: "the workload was stopped with SIGTERM",
}


def exit_meaning(exit_code: int | None) -> str:
    """What memhog meant by ``exit_code``, as a clause."""
    if exit_code is None:
        return "the workload's exit code is unknown"
    return _EXIT_MEANINGS.get(exit_code, f"the workload exited with code {exit_code}")


class Mode(StrEnum):
    BULK = "bulk"
    """The seed: allocate everything in chunks and hold it all until the end."""
    STREAMING = "streaming"
    """The proposed fix: the same bytes through a bounded window of chunks."""
    LEAK = "leak"
    """Grow by a step every interval up to the size."""
    SPIKE = "spike"
    """A steady base with one short spike up to the size."""


_DEFAULT_CHUNK = {Mode.BULK: 500 * MiB, Mode.STREAMING: 50 * MiB}


@dataclass(frozen=True)
class WorkloadSpec:
    mode: Mode = Mode.BULK
    size_bytes: int = 1000 * MiB
    chunk_bytes: int | None = None
    window: int | None = None
    step_bytes: int | None = None
    interval_s: float | None = None
    base_bytes: int | None = None
    hold_s: float = 0.0
    reaccess: int = 0
    """Passes over the held memory after allocating (memhog ``--reaccess``)."""

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 1:
            raise SizeError(f"window must be at least 1, not {self.window}")
        if self.interval_s is not None and self.interval_s < 0:
            raise SizeError(f"interval must not be negative, not {self.interval_s}")
        if self.reaccess < 0:
            raise SizeError(f"reaccess must not be negative, not {self.reaccess}")
        if self.hold_s < 0:
            raise SizeError(f"hold must not be negative, not {self.hold_s}")
        if self.base_bytes is not None and self.base_bytes >= self.size_bytes:
            raise SizeError("spike base must be smaller than the size (the spike's peak)")

    def peak_live_bytes(self) -> int:
        """The most workload memory alive at once."""
        if self.mode == Mode.STREAMING:
            chunk = self.chunk_bytes or _DEFAULT_CHUNK[Mode.STREAMING]
            return min(self.size_bytes, (self.window or 2) * chunk)
        return self.size_bytes

    def demand_bytes(self, overhead: int = INTERPRETER_OVERHEAD_BYTES) -> int:
        """Peak memory the container needs: live buffers plus the interpreter."""
        return self.peak_live_bytes() + overhead

    def args(self) -> list[str]:
        """memhog's command line (after the entrypoint)."""
        args = [self.mode.value, "--size", format_binary(self.size_bytes)]
        if self.chunk_bytes is not None:
            args += ["--chunk", format_binary(self.chunk_bytes)]
        if self.window is not None:
            args += ["--window", str(self.window)]
        if self.step_bytes is not None:
            args += ["--step", format_binary(self.step_bytes)]
        if self.interval_s is not None:
            args += ["--interval", f"{self.interval_s:g}"]
        if self.base_bytes is not None:
            args += ["--base", format_binary(self.base_bytes)]
        if self.hold_s:
            args += ["--hold", f"{self.hold_s:g}"]
        if self.reaccess:
            args += ["--reaccess", str(self.reaccess)]
        return args

    def describe(self) -> str:
        again = f", {self.reaccess} re-access pass{'es' if self.reaccess > 1 else ''}"
        return self._describe_pattern() + (again if self.reaccess else "")

    def _describe_pattern(self) -> str:
        size = format_binary(self.size_bytes)
        if self.mode == Mode.STREAMING:
            chunk = format_binary(self.chunk_bytes or _DEFAULT_CHUNK[Mode.STREAMING])
            return f"streaming {size} in {chunk} chunks, window {self.window or 2}"
        if self.mode == Mode.BULK:
            return f"bulk {size} in {format_binary(self.chunk_bytes or 500 * MiB)} chunks"
        if self.mode == Mode.LEAK:
            return f"leak to {size}"
        return f"spike to {size}"

    def to_mapping(self) -> dict[str, Any]:
        """An OOMExperiment's ``spec.workload`` for this workload (the inverse of
        :meth:`from_mapping`): sizes in exact binary units, absent fields left out."""
        mapping: dict[str, Any] = {"mode": self.mode.value, "size": format_binary(self.size_bytes)}
        sizes = {"chunk": self.chunk_bytes, "step": self.step_bytes, "base": self.base_bytes}
        mapping.update({k: format_binary(v) for k, v in sizes.items() if v is not None})
        if self.window is not None:
            mapping["window"] = self.window
        if self.interval_s is not None:
            mapping["interval"] = self.interval_s
        if self.hold_s:
            mapping["hold"] = self.hold_s
        if self.reaccess:
            mapping["reaccess"] = self.reaccess
        return mapping

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> WorkloadSpec:
        """From an OOMExperiment's ``spec.workload`` (camelCase, memhog size strings)."""

        def size(key: str) -> int | None:
            value = spec.get(key)
            return None if value is None else parse_binary_size(value, field=f"workload.{key}")

        try:
            mode = Mode(spec.get("mode", Mode.BULK.value))
        except ValueError:
            modes = ", ".join(m.value for m in Mode)
            raise SizeError(f"workload.mode {spec.get('mode')!r} is not one of {modes}") from None
        interval = spec.get("interval")
        return cls(
            mode=mode,
            size_bytes=size("size") or 1000 * MiB,
            chunk_bytes=size("chunk"),
            window=spec.get("window"),
            step_bytes=size("step"),
            interval_s=None if interval is None else float(interval),
            base_bytes=size("base"),
            hold_s=float(spec.get("hold", 0) or 0),
            reaccess=int(spec.get("reaccess", 0) or 0),
        )


def swap_limit_from_report(cgroup: Mapping[str, Any] | None) -> int | None:
    """Swap the container's cgroup allowed, from memhog's ``cgroup`` report; -1 for unlimited.

    cgroup v1 reports memory+swap, so swap is the difference; v2 reports swap alone.
    None when the report does not say.
    """
    if not cgroup:
        return None
    version = str(cgroup.get("version", "")).removeprefix("v")
    if version == "2":
        if "swap_limit_bytes" not in cgroup:
            return None
        swap = cgroup["swap_limit_bytes"]
        return -1 if swap is None else int(swap)
    if version == "1":
        if "memsw_limit_bytes" not in cgroup or "memory_limit_bytes" not in cgroup:
            return None
        memsw, memory = cgroup["memsw_limit_bytes"], cgroup["memory_limit_bytes"]
        if memsw is None:
            return -1
        if memory is None:
            return None
        return max(0, int(memsw) - int(memory))
    return None


def _counter(record: Mapping[str, Any] | None, *path: str) -> int | None:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _delta(start: Mapping[str, Any], end: Mapping[str, Any], *path: str) -> int | None:
    before, after = _counter(start, *path), _counter(end, *path)
    return None if before is None or after is None else max(0, after - before)


def swap_activity(start: Mapping[str, Any], summary: Mapping[str, Any]) -> SwapActivity:
    """Swap traffic between memhog's start and summary lines (raw counters in both).

    Swap-ins come from the cgroup's own memory.stat when it has pswpin (cgroup v2, kernel 6.12+),
    else from the system-wide /proc/vmstat; pages are counted in the workload's page size.
    """
    page = _counter(start, "page_size") or 4096
    scope = "unknown"
    swapin = _delta(start, summary, "cgroup", "stat", "pswpin")
    swapout = _delta(start, summary, "cgroup", "stat", "pswpout")
    if swapin is not None:
        scope = "cgroup"
    else:
        swapin = _delta(start, summary, "vmstat", "pswpin")
        swapout = _delta(start, summary, "vmstat", "pswpout")
        if swapin is not None:
            scope = "system"
    faults = _delta(start, summary, "cgroup", "stat", "pgmajfault")
    if faults is None:
        faults = _delta(start, summary, "majflt")
    return SwapActivity(
        swapin_bytes=None if swapin is None else swapin * page,
        swapout_bytes=None if swapout is None else swapout * page,
        swapin_scope=scope,
        major_faults=faults,
        swap_bytes_at_end=_swap_at_end(summary),
    )


def _swap_at_end(summary: Mapping[str, Any]) -> int | None:
    """Bytes the cgroup held in swap at the summary: v1 memory.stat ``swap``, else v2's
    memory.swap.current (memhog's ``swap_usage_bytes``)."""
    in_stat = _counter(summary, "cgroup", "stat", "swap")
    return in_stat if in_stat is not None else _counter(summary, "cgroup", "swap_usage_bytes")


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_lines(lines: Iterable[str]) -> Progress:
    """How far the workload got: the last progress line, the summary, the peak seen.

    Lines that are not memhog JSON (a runtime's own messages, a line cut by a kill) are skipped.
    """
    allocated = processed = peak = peak_rss = None
    status = None
    cgroup: dict[str, Any] | None = None
    count = 0
    timeline: list[tuple[float, int | None, int | None]] = []
    start: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    swap_limits: list[tuple[float, int | None]] = []
    for raw in lines:
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict) or "event" not in record:
            continue
        count += 1
        event = record["event"]
        if isinstance(record.get("cgroup"), dict):
            cgroup = record["cgroup"]
        if record.get("allocated_bytes") is not None:
            allocated = int(record["allocated_bytes"])
            peak = max(peak or 0, allocated)
        if record.get("processed_bytes") is not None:
            processed = int(record["processed_bytes"])
        if record.get("rss_bytes") is not None:
            peak_rss = max(peak_rss or 0, int(record["rss_bytes"]))
        if isinstance(record.get("elapsed_s"), int | float):
            rss, live = record.get("rss_bytes"), record.get("allocated_bytes")
            timeline.append((float(record["elapsed_s"]), rss, live))
        if event == "progress" and "swap_limit_bytes" in record:
            limit = record["swap_limit_bytes"]
            elapsed = _seconds(record.get("elapsed_s")) or 0.0
            swap_limits.append((elapsed, int(limit) if isinstance(limit, int) else None))
        if event == "start":
            start = record
        if event == "summary":
            summary = record
            status = record.get("status")
            if record.get("peak_allocated_bytes") is not None:
                peak = int(record["peak_allocated_bytes"])
            if record.get("peak_rss_bytes") is not None:
                peak_rss = int(record["peak_rss_bytes"])
    return Progress(
        allocated_bytes=allocated,
        processed_bytes=processed,
        peak_allocated_bytes=peak,
        peak_rss_bytes=peak_rss,
        summary_status=status,
        lines=count,
        cgroup=cgroup,
        timeline=tuple(timeline),
        allocate_s=_seconds((summary or {}).get("allocate_s")),
        reaccess_s=_seconds((summary or {}).get("reaccess_s")),
        reaccess_passes=int((summary or {}).get("reaccess_passes") or 0),
        swap=swap_activity(start, summary) if start and summary else None,
        swap_limits=tuple(swap_limits),
    )
