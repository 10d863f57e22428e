"""What every runner is: ``run(experiment) -> RunResult`` and ``info() -> RuntimeInfo``.

Docker and podman implement :class:`Runner` for a :class:`ContainerRun`; the pod runner's
experiment is an OOMExperiment spec. Whatever the runtime, ``info()`` describes the machine it
runs containers on (which may not be this one), and predictions are made for that machine.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from oomlab.rules.classify import classify_exit
from oomlab.rules.docker import DockerFlags, flags_allowance
from oomlab.rules.results import CgroupVersion, Outcome, RunResult, RuntimeInfo
from oomlab.rules.semantics import FlagError
from oomlab.rules.workload import DEFAULT_IMAGE, WorkloadSpec, parse_lines

RUN_LABEL = "oomlab.dev/run"

Experiment = TypeVar("Experiment", contravariant=True)


class Runner(Protocol[Experiment]):
    """Turns an experiment into an observed result on one runtime."""

    def info(self) -> RuntimeInfo:
        """The runtime's host as it really is: kernel, cgroup version, swap, local or remote."""
        ...

    def run(self, experiment: Experiment) -> RunResult:
        """Run the experiment to its end (or timeout) and leave nothing behind."""
        ...


class EngineError(RuntimeError):
    """The engine could not be reached or refused the request; the message says which."""


class EngineUnavailable(EngineError):
    """No run can work: the engine does not answer or lacks the image. Stops a whole matrix."""


@dataclass(frozen=True)
class ContainerRun:
    """Everything needed to run one workload under one set of Docker-style flags."""

    workload: WorkloadSpec
    memory: str | None = "500m"
    memory_swap: str | None = None
    runtime: str = "runc"
    engine: str = "docker"
    image: str = DEFAULT_IMAGE
    timeout_s: float = 180.0

    @property
    def docker_flags(self) -> DockerFlags:
        return DockerFlags(self.memory, self.memory_swap, self.runtime)

    @property
    def memory_bytes(self) -> int | None:
        return self.docker_flags.memory_bytes

    @property
    def memory_swap_bytes(self) -> int | None:
        return self.docker_flags.memory_swap_bytes

    def flags(self) -> list[str]:
        flags = []
        if self.memory is not None:
            flags.append(f"--memory={self.memory}")
        if self.memory_swap is not None:
            flags.append(f"--memory-swap={self.memory_swap}")
        return flags


ContainerRunner = Runner[ContainerRun]


class PeakSampler:
    """Polls a container's cgroup for its memory(+swap) high-water mark until stopped.

    Only possible when the engine shares this kernel; for a remote engine pass no paths and the
    peak stays unknown.
    """

    def __init__(self, paths: list[Path], interval_s: float = 0.05) -> None:
        self.paths = paths
        self.interval_s = interval_s
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        if self.paths:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in self.paths:
                with contextlib.suppress(OSError, ValueError):
                    value = int(path.read_text().strip())
                    self.peak = max(self.peak or 0, value)
            self._stop.wait(self.interval_s)


def evidence_limit(run: ContainerRun, info: RuntimeInfo) -> int | None:
    """The limit the sampled peak is measured against: on cgroup v1 the sampler reads
    memory+swap, on v2 ``memory.peak`` (memory alone)."""
    try:
        allowance = flags_allowance(run.docker_flags, info)
    except FlagError:
        return None
    if allowance.memory_bytes is None:
        return None
    if info.cgroup_version == CgroupVersion.V1 and allowance.swap_bytes is not None:
        return allowance.memory_bytes + allowance.swap_bytes
    return allowance.memory_bytes


def container_result(
    runner: str,
    run: ContainerRun,
    info: RuntimeInfo,
    *,
    exit_code: int | None,
    oom_killed: bool | None,
    oom_reported_by: str | None,
    error: str,
    timed_out: bool,
    logs: str,
    peak: int | None,
    duration: float,
) -> RunResult:
    """One container's end, from what its engine reported, as a :class:`RunResult`."""
    if timed_out:
        outcome, reason = Outcome.TIMED_OUT, "still running at the timeout, so it was killed"
    elif error:
        outcome, reason = Outcome.REFUSED, f"the runtime refused to start it: {error}"
    else:
        verdict = classify_exit(
            exit_code,
            oom_reported_by=oom_reported_by,
            used_bytes=peak,
            limit_bytes=evidence_limit(run, info),
            used_what="at the cgroup's peak",
        )
        outcome, reason = verdict.outcome, verdict.sentence
    return RunResult(
        runner=runner,
        outcome=outcome,
        reason=reason,
        exit_code=exit_code,
        oom_killed=oom_killed,
        progress=parse_lines(logs.splitlines()),
        peak_usage_bytes=peak,
        duration_s=round(duration, 3),
        host=info,
        runtime=run.runtime,
        log_tail="\n".join(logs.splitlines()[-5:]),
    )
