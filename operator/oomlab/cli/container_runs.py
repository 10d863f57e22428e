"""Container runs predicted for their engine's own host, then observed: one :class:`Row` each.

The CLI's tables, ``oomlab report`` and the charts all read these rows; none of them owns them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from oomlab.cli.plot import Bar, Timeline
from oomlab.cli.verdict import Verdict
from oomlab.rules.docker import docker_prediction as predict_docker
from oomlab.rules.docker import flags_allowance
from oomlab.rules.results import Outcome, RunResult, RuntimeInfo
from oomlab.rules.semantics import Allowance, Prediction, usable_swap
from oomlab.rules.units import human
from oomlab.runners import (
    ContainerRun,
    ContainerRunner,
    EngineError,
    EngineUnavailable,
    container_runner,
)


@dataclass(frozen=True)
class Row:
    """One run: what the rules predicted, what the engine did (or why it could not run)."""

    run: ContainerRun
    prediction: Prediction | None
    result: RunResult | None
    error: str = ""

    @property
    def verdict(self) -> Verdict:
        result = self.result
        return Verdict(
            self.prediction.outcome.value if self.prediction else None,
            result.outcome.value if result else None,
            result.exit_code if result else None,
            not_run=self.error if result is None else None,
            # the rules predict memory behaviour; a refusal is reported on its own
            refused=result is not None and result.outcome == Outcome.REFUSED,
        )

    @property
    def agrees(self) -> bool | None:
        return self.verdict.agrees

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.run.engine,
            "runtime": self.run.runtime,
            "workload": self.run.workload.describe(),
            "memory": self.run.memory,
            "memory_swap": self.run.memory_swap,
            "predicted": self.prediction.outcome.value if self.prediction else None,
            "explanation": self.prediction.explanation if self.prediction else None,
            "observed": self.result.to_dict() if self.result else None,
            "agrees": self.agrees,
            "error": self.error or None,
        }


def docker_prediction(
    run: ContainerRun, host: RuntimeInfo | None, *, host_swap: int | None = None
) -> tuple[Allowance, Prediction]:
    """The rules' verdict for ``run`` on the engine whose host is ``host`` (None: flags only).

    ``host_swap`` overrides the host's swap total (``oomlab predict --host-swap``).
    """
    return predict_docker(
        run.docker_flags,
        run.workload.demand_bytes(),
        host,
        host_swap_bytes=host_swap,
        subject="Docker" if run.engine.startswith("docker") else "podman",
    )


def execute(
    runs: Sequence[ContainerRun], on_done: Callable[[Row], None] | None = None
) -> list[Row]:
    """Predict (for each engine's own host) then run each experiment; a runtime that refuses is
    a row, not a crash."""
    runners: dict[str, ContainerRunner] = {}
    rows = []
    for run in runs:
        prediction = None
        try:
            if run.engine not in runners:
                runners[run.engine] = container_runner(run.engine)
            runner = runners[run.engine]
            _, prediction = docker_prediction(run, runner.info())
            row = Row(run, prediction, runner.run(run))
        except EngineUnavailable:
            raise
        except EngineError as exc:
            row = Row(run, prediction, None, str(exc))
        rows.append(row)
        if on_done:
            on_done(row)
    return rows


def describe_host(info: RuntimeInfo) -> str:
    """One line on a runtime's host, as its runner reported it."""
    where = {True: "local", False: "remote", None: "local or remote unknown"}[info.local]
    swap = "unknown" if info.swap_total_bytes is None else human(info.swap_total_bytes)
    limits = {True: "", False: " (no swap limits: --memory-swap ignored)", None: ""}
    engine = f"{info.engine} {info.engine_version or ''}".strip() if info.engine else "host"
    return (
        f"{engine} on {info.hostname or '?'} ({where}): cgroup {info.cgroup_version.value}, "
        f"swap {swap}{limits[info.swap_limit_supported]}, memory {human(info.memory_total_bytes)}, "
        f"kernel {info.kernel or 'unknown'}, THP {info.transparent_hugepages or 'unknown'}"
    )


def _allowance(row: Row) -> Allowance:
    """Docker's allowance for the row's flags on the host the row ran on."""
    host = row.result.host if row.result else None
    return flags_allowance(row.run.docker_flags, host)


def row_bar(row: Row) -> Bar:
    """A Docker/podman row on the limits chart: its flags' allowance on the host it ran on."""
    allowance = _allowance(row)
    host_swap = row.result.host.swap_total_bytes if row.result else None
    usable, _ = usable_swap(allowance, host_swap)
    again = row.run.workload.reaccess
    ran = row.result is not None and row.result.outcome != Outcome.REFUSED
    note = ""
    if not ran:
        note = row.result.reason if row.result else row.error
    return Bar(
        label=f"{row.run.engine}/{row.run.runtime} {row.run.workload.mode.value}"
        + (f" +{again} re-access" if again else "")
        + "\n"
        + " ".join(row.run.flags()),
        memory_bytes=allowance.memory_bytes or 0,
        swap_bytes=usable if usable is not None else host_swap or 0,
        demand_bytes=row.run.workload.demand_bytes(),
        peak_bytes=row.result.peak_usage_bytes if row.result and ran else None,
        outcome=row.result.outcome if row.result else Outcome.REFUSED,
        note=note,
    )


def row_timeline(row: Row) -> Timeline | None:
    """A row's memory over time (None when it did not run)."""
    result = row.result
    if result is None:
        return None
    allowance = _allowance(row)
    usable = None
    if allowance.memory_bytes:
        usable, _ = usable_swap(allowance, result.host.swap_total_bytes)
    return Timeline(
        title=f"{row.run.engine}/{row.run.runtime} {row.run.workload.describe()} "
        f"{' '.join(row.run.flags())}: {result.outcome.value}",
        samples=tuple(result.progress.timeline),
        outcome=result.outcome,
        memory_bytes=allowance.memory_bytes,
        usable_swap_bytes=usable,
    )
