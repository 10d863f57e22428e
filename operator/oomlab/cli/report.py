"""``oomlab report``: the runtime comparison across every runtime this machine can reach.

A column is a runtime (an engine spec and an OCI runtime: ``docker/runc``, ``podman/crun``,
``docker@vm/runc`` for an engine reached through ``OOMLAB_ENGINE_VM``); a row is a scenario (the
seed without and with swap, swap unset, streaming, the seed re-reading its data). Every cell is
predicted for that runtime's own host (its runner's ``info()``) and observed; a disagreement is a
finding, written down with both sides' reasons, never retried. Two scenarios are also measured
against their unconstrained twin for the cost of surviving by swap.

The cluster's nodes, through the operator, are columns of their own (:mod:`report_cluster`).
This module measures; :mod:`report_findings` judges and :mod:`report_render` writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from oomlab.cli.cluster_cells import ClusterPart, planned_cells
from oomlab.cli.container_runs import Row, docker_prediction
from oomlab.cli.report_model import (
    SCENARIOS,
    Cell,
    Column,
    Measured,
    Scenario,
    Step,
    machine_of,
    skip_reason,
    unconstrained_twin,
)
from oomlab.rules.results import RuntimeInfo
from oomlab.rules.workload import DEFAULT_IMAGE
from oomlab.runners import ContainerRun, ContainerRunner, EngineError, container_runner


@dataclass
class Report(Measured):
    cells: list[Cell] = field(default_factory=list)
    hosts: dict[str, RuntimeInfo] = field(default_factory=dict)
    started: str = ""
    cluster: ClusterPart | None = None
    """The cluster's columns (report_cluster), when they were asked for."""
    groups: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each group of columns that ran at the same time (one per machine)."""


def planned_cluster_cells(cluster: bool, scenarios: Sequence[Scenario] = SCENARIOS) -> int:
    return planned_cells(scenarios) if cluster else 0


def _timed(report: Report, name: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    try:
        return action()
    finally:
        report.steps.append(Step(name, round(time.monotonic() - started, 3)))


def _observe(report: Report, name: str, runner: ContainerRunner | None, run: ContainerRun) -> Row:
    """Predict for the runner's host, run once, time it as step ``name``."""
    started = time.monotonic()
    prediction = None
    try:
        if runner is None:
            return Row(run, None, None, report.unreachable.get(run.engine, "engine unreachable"))
        _, prediction = docker_prediction(run, runner.info())
        return Row(run, prediction, runner.run(run))
    except EngineError as exc:
        return Row(run, prediction, None, str(exc))
    finally:
        report.steps.append(Step(name, round(time.monotonic() - started, 3)))


def measure(
    cols: Sequence[Column],
    scenarios: Sequence[Scenario] = SCENARIOS,
    *,
    image: str = DEFAULT_IMAGE,
    timeout_s: float = 180.0,
    on_step: Callable[[str], None] | None = None,
    on_done: Callable[[Row], None] | None = None,
    skip: Sequence[str] = (),
    stop: threading.Event | None = None,
) -> Report:
    """Every scenario on every column, in order; an unreachable engine or a refusing runtime is
    a row with its reason, never a crash; a cell ``skip`` names is a row saying so. Once
    ``stop`` is set no further run starts (the report was interrupted in another thread)."""
    report = Report(started=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    started = time.monotonic()
    runners: dict[str, ContainerRunner | None] = {}
    for column in cols:
        if column.engine not in runners:
            if on_step:
                on_step(f"asking {column.engine} what its host is")
            try:
                reached = container_runner(column.engine)
                info = _timed(report, f"{column.engine}: info() probe", reached.info)
                report.hosts[column.engine] = info
                runners[column.engine] = reached
            except EngineError as exc:
                runners[column.engine] = None
                report.unreachable[column.engine] = str(exc)
        runner = runners[column.engine]
        for scenario in scenarios:
            run = ContainerRun(
                scenario.workload, scenario.memory, scenario.memory_swap, column.runtime,
                column.engine, image, timeout_s,
            )  # fmt: skip
            skipped = skip_reason(skip, column.label, scenario.key)
            if skipped:
                report.cells.append(Cell(column, scenario, Row(run, None, None, skipped)))
                if on_done:
                    on_done(report.cells[-1].row)
                continue
            twin = None
            planned = [(f"{column.label}: {scenario.key}", run)]
            if scenario.cost:
                twin_name = f"{column.label}: {scenario.key} (unconstrained twin)"
                planned.insert(0, (twin_name, unconstrained_twin(run)))
            observed = []
            for name, each in planned:
                if stop is not None and stop.is_set():
                    return report  # unfinished: the caller is on its way out
                if on_step:
                    on_step(name)
                observed.append(_observe(report, name, runner, each))
                if on_done:
                    on_done(observed[-1])
            twin = observed[0] if scenario.cost else None
            report.cells.append(Cell(column, scenario, observed[-1], twin))
    report.wall_s = round(time.monotonic() - started, 3)
    return report


def measure_all(
    cols: Sequence[Column],
    scenarios: Sequence[Scenario] = SCENARIOS,
    *,
    cluster: bool = False,
    image: str = DEFAULT_IMAGE,
    timeout_s: float = 180.0,
    cluster_timeout_s: float = 900.0,
    on_step: Callable[[str], None] | None = None,
    on_done: Callable[[Row], None] | None = None,
    on_cluster_done: Callable[[str], None] | None = None,
    skip: Sequence[str] = (),
    keep_sweep: bool = False,
) -> Report:
    """:func:`measure` per machine, and the cluster's columns, each group in its own thread: the
    wall time is the slowest group's, not the sum. The cluster's group (else the first) runs in
    this thread, where Ctrl-C lands: the sweep's wait stops and the sweep is deleted at once,
    and the other groups start no further run (the one under way ends and is removed)."""
    started = time.monotonic()
    stop = threading.Event()
    by_machine: dict[str, list[Column]] = {}
    for column in cols:
        by_machine.setdefault(machine_of(column.engine), []).append(column)
    jobs: dict[str, Callable[[], Any]] = {}
    for machine, group in by_machine.items():

        def engines(group: list[Column] = group) -> Report:
            return measure(
                group, scenarios, image=image, timeout_s=timeout_s, on_step=on_step,
                on_done=on_done, skip=skip, stop=stop,
            )  # fmt: skip

        jobs[machine] = engines
    if cluster:
        from oomlab.cli.report_cluster import measure_cluster

        def on_cluster() -> ClusterPart:
            return measure_cluster(
                scenarios, image=image, timeout_s=cluster_timeout_s, on_step=on_step,
                on_done=on_cluster_done, skip=skip, keep=keep_sweep,
            )  # fmt: skip

        jobs["cluster"] = on_cluster
    report = Report(started=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    parts = _run_groups(jobs, "cluster" if cluster else next(iter(jobs), ""), stop)
    order = {column: index for index, column in enumerate(cols)}
    for name, part in parts.items():
        report.groups[name] = part.wall_s
        report.steps += part.steps
        if isinstance(part, Report):
            report.cells += part.cells
            report.hosts.update(part.hosts)
            report.unreachable.update(part.unreachable)
        else:
            report.cluster = part
    report.cells.sort(key=lambda cell: order[cell.column])
    report.wall_s = round(time.monotonic() - started, 3)
    return report


def _run_groups(
    jobs: dict[str, Callable[[], Any]], here: str, stop: threading.Event
) -> dict[str, Any]:
    """Every job's result by name: ``here`` in this thread, the others in threads of their own.
    An exception here (Ctrl-C included) sets ``stop``, so the others start nothing more, and
    goes on once they have returned."""
    others = {name: job for name, job in jobs.items() if name != here}
    parts: dict[str, Any] = {}
    with ThreadPoolExecutor(max(1, len(others))) as pool:
        futures = {name: pool.submit(job) for name, job in others.items()}
        try:
            if here in jobs:
                parts[here] = jobs[here]()
            parts.update({name: future.result() for name, future in futures.items()})
        except BaseException:
            stop.set()
            raise
    return {name: parts[name] for name in jobs}
