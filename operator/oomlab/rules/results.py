"""Outcomes and results shared by every runner (Docker, podman, a Kubernetes pod)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What happened to one run of a workload."""

    COMPLETED = "Completed"
    OOM_KILLED = "OOMKilled"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    REFUSED = "Refused"
    """The runtime would not start the container at all (for example crun on hybrid cgroups)."""


class Predicted(StrEnum):
    """What the rules say will happen; Borderline when demand and capacity are too close to call."""

    COMPLETED = "Completed"
    OOM_KILLED = "OOMKilled"
    BORDERLINE = "Borderline"


class CgroupVersion(StrEnum):
    V1 = "v1"
    V2 = "v2"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class RuntimeInfo:
    """What the machine a runtime runs its containers on really is, as that runtime reports it.

    For a remote engine (``DOCKER_HOST`` over ssh, a forwarded socket, an engine inside a VM) these
    are the remote kernel's facts, never this process's. None means the runtime did not say.
    """

    cgroup_version: CgroupVersion = CgroupVersion.UNKNOWN
    swap_total_bytes: int | None = None
    memory_total_bytes: int | None = None
    kernel: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    hostname: str | None = None
    swap_limit_supported: bool | None = None
    """Whether the kernel accounts swap per cgroup (Docker's ``SwapLimit``); without it Docker
    ignores --memory-swap."""
    transparent_hugepages: str | None = None
    """``always``, ``madvise`` or ``never``: with ``always`` swapped pages can count against the
    memory limit again, so a run that fits memory + swap on paper may still be OOM-killed."""
    local: bool | None = None
    """True when the engine shares this process's kernel (so its cgroups are readable here)."""
    swap_behavior: str | None = None
    """A Kubernetes node's kubelet ``memorySwap.swapBehavior`` (NoSwap, LimitedSwap); None for a
    container engine, which has no such setting."""


HostFacts = RuntimeInfo
"""The name the status code and older callers use for :class:`RuntimeInfo`."""


@dataclass(frozen=True)
class SwapActivity:
    """Swap traffic while the workload ran: its summary's counters minus its start's.

    ``swapin_scope`` says whose swap-ins these are: ``cgroup`` (the container's own memory.stat,
    cgroup v2 on kernels from 6.12) or ``system`` (``/proc/vmstat``: every process on the kernel,
    the only count cgroup v1 has). None means the workload could not read it.
    """

    swapin_bytes: int | None = None
    swapout_bytes: int | None = None
    swapin_scope: str = "unknown"
    major_faults: int | None = None
    """The cgroup's pgmajfault (swap-ins and file reads alike), else the process's majflt."""
    swap_bytes_at_end: int | None = None
    """What the cgroup held in swap when the workload finished (v1 memory.stat ``swap``)."""


@dataclass(frozen=True)
class Progress:
    """How far a workload got, read from its JSON lines."""

    allocated_bytes: int | None = None
    processed_bytes: int | None = None
    peak_allocated_bytes: int | None = None
    peak_rss_bytes: int | None = None
    summary_status: str | None = None
    lines: int = 0
    cgroup: dict[str, Any] | None = None
    timeline: tuple[tuple[float, int | None, int | None], ...] = ()
    """(elapsed seconds, RSS bytes, allocated bytes) per line, for plots."""
    allocate_s: float | None = None
    """Wall seconds the workload spent in its allocation pattern (from its summary)."""
    reaccess_s: float | None = None
    """Wall seconds of all re-access passes; None when none ran."""
    reaccess_passes: int = 0
    swap: SwapActivity | None = None
    swap_limits: tuple[tuple[float, int | None], ...] = ()
    """(elapsed seconds, memory.swap.max, None = max) from each progress line that read it
    (cgroup v2): shows whether the swap limit changed while the workload ran."""


@dataclass(frozen=True)
class RunResult:
    """One observed run: the same shape for Docker, podman and Kubernetes."""

    runner: str
    outcome: Outcome
    reason: str
    exit_code: int | None = None
    oom_killed: bool | None = None
    progress: Progress = field(default_factory=Progress)
    peak_usage_bytes: int | None = None
    duration_s: float | None = None
    host: RuntimeInfo = field(default_factory=RuntimeInfo)
    runtime: str | None = None
    log_tail: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["host"]["cgroup_version"] = self.host.cgroup_version.value
        return data
