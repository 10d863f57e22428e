"""What ``oomlab report`` compares: its scenarios (rows), its runtimes (columns), and the cells
where they meet, each judged by the one cell model (:class:`~oomlab.cli.verdict.Verdict`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from oomlab.cli.container_runs import Row
from oomlab.rules.results import Outcome
from oomlab.rules.swapcost import SwapCost, swap_cost, twin_memory_bytes
from oomlab.rules.units import MiB
from oomlab.rules.workload import Mode, WorkloadSpec
from oomlab.runners import ContainerRun

REACCESS_PASSES = 3
SEED = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB)
STREAMING = WorkloadSpec(Mode.STREAMING, 1000 * MiB, 50 * MiB, window=2)


@dataclass(frozen=True)
class Scenario:
    key: str
    heading: str
    workload: WorkloadSpec
    memory: str | None
    memory_swap: str | None
    cost: str = ""
    """When set, also run its unconstrained twin and report the slowdown under this heading."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("no-swap", "no swap (500m/500m)", SEED, "500m", "500m"),
    Scenario("swap", "swap allowed (500m/1g)", SEED, "500m", "1g", "swap cost: one pass"),
    Scenario("swap-unset", "swap unset (500m)", SEED, "500m", None),
    Scenario("streaming", "streaming, 500m/500m", STREAMING, "500m", "500m"),
    Scenario(
        "reaccess",
        f"500m/1g, {REACCESS_PASSES} re-access passes",
        replace(SEED, reaccess=REACCESS_PASSES),
        "500m",
        "1g",
        f"swap cost: {REACCESS_PASSES} re-access passes",
    ),
)


@dataclass(frozen=True)
class Column:
    """One runtime: an engine spec (``docker``, ``podman``, ``docker@vm``) and an OCI runtime."""

    engine: str
    runtime: str

    @property
    def label(self) -> str:
        return f"{self.engine}/{self.runtime}"


def columns(engines: Sequence[str], runtimes: Sequence[str]) -> list[Column]:
    return [Column(engine, runtime) for engine in engines for runtime in runtimes]


def machine_of(engine: str) -> str:
    """Engines on the same machine share its CPU and memory and run one after another; engines
    on different machines (the host, a VM reached as ``docker@vm``) may run at the same time."""
    where = engine.split("@", 1)[1] if "@" in engine else ""
    return "host engines" if not where or where.startswith("unix:") else f"{where} engines"


def unconstrained_twin(run: ContainerRun) -> ContainerRun:
    """The same run with memory enough never to need swap, and no swap."""
    limit = f"{twin_memory_bytes(run.workload.demand_bytes()) // MiB}m"
    return replace(run, memory=limit, memory_swap=limit)


@dataclass(frozen=True)
class Cell:
    column: Column
    scenario: Scenario
    row: Row
    twin: Row | None = None

    @property
    def cost(self) -> SwapCost | None:
        if self.twin is None or self.row.result is None or self.twin.result is None:
            return None
        if self.row.result.outcome == Outcome.REFUSED:
            return None  # the runtime's refusal is its own finding
        return swap_cost(self.row.result, self.twin.result)


@dataclass(frozen=True)
class Step:
    name: str
    seconds: float


@dataclass
class Measured:
    """What one group of columns (one machine's engines, the cluster) took and could not reach."""

    unreachable: dict[str, str] = field(default_factory=dict)
    """Engine or column label -> why it was not reachable."""
    steps: list[Step] = field(default_factory=list)
    wall_s: float = 0.0


def planned_runs(cols: Sequence[Column], scenarios: Sequence[Scenario]) -> int:
    return len(cols) * sum(2 if s.cost else 1 for s in scenarios)


def skip_reason(skip: Sequence[str], column: str, scenario: str) -> str:
    """Why a cell is left out on purpose (``--skip COLUMN:SCENARIO``, shell globs), or ""."""
    for pattern in skip:
        where, _, what = pattern.rpartition(":")
        if fnmatch.fnmatchcase(column, where or "*") and fnmatch.fnmatchcase(scenario, what):
            return f"skipped to keep the report's wall time in budget (--skip '{pattern}')"
    return ""
