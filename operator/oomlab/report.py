"""``oomlab report``: the runtime comparison across every runtime this machine can reach.

A column is a runtime (an engine spec and an OCI runtime: ``docker/runc``, ``podman/crun``,
``docker@vm/runc`` for an engine reached through ``OOMLAB_ENGINE_VM``); a row is a scenario (the
seed without and with swap, swap unset, streaming, the seed re-reading its data). Every cell is
predicted for that runtime's own host (its runner's ``info()``) and observed; a disagreement is a
finding, written down with both sides' reasons, never retried. Two scenarios are also measured
against their unconstrained twin for the cost of surviving by swap.

Later columns plug in as runners: a Docker engine in a cgroup v2 VM is ``--engine docker@vm``;
the cluster's nodes (through the operator) would be a column kind of their own.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from oomlab.container_runs import Row, describe_host, docker_prediction
from oomlab.results import Outcome, Predicted, RuntimeInfo
from oomlab.runners import ContainerRun, ContainerRunner, EngineError, container_runner
from oomlab.swapcost import CostVerdict, SwapCost, swap_cost, twin_memory_bytes
from oomlab.units import MiB, human
from oomlab.workload import DEFAULT_IMAGE, Mode, WorkloadSpec

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
class Report:
    cells: list[Cell] = field(default_factory=list)
    hosts: dict[str, RuntimeInfo] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    started: str = ""
    wall_s: float = 0.0


# -- running ------------------------------------------------------------------------------------


def planned_runs(cols: Sequence[Column], scenarios: Sequence[Scenario]) -> int:
    return len(cols) * sum(2 if s.cost else 1 for s in scenarios)


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
) -> Report:
    """Every scenario on every column, in order; an unreachable engine or a refusing runtime is
    a row with its reason, never a crash."""
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
            twin = None
            planned = [(f"{column.label}: {scenario.key}", run)]
            if scenario.cost:
                twin_name = f"{column.label}: {scenario.key} (unconstrained twin)"
                planned.insert(0, (twin_name, unconstrained_twin(run)))
            observed = []
            for name, each in planned:
                if on_step:
                    on_step(name)
                observed.append(_observe(report, name, runner, each))
                if on_done:
                    on_done(observed[-1])
            twin = observed[0] if scenario.cost else None
            report.cells.append(Cell(column, scenario, observed[-1], twin))
    report.wall_s = round(time.monotonic() - started, 3)
    return report


# -- judging (pure) -----------------------------------------------------------------------------


def cell_text(row: Row) -> str:
    """``OOMKilled, 137 ✓`` (as predicted), ``Completed ✗ (predicted OOMKilled)``, or why not."""
    result = row.result
    if result is None:
        return f"not run: {row.error}"
    if result.outcome == Outcome.REFUSED:
        return "refused"
    code = "" if result.exit_code in (None, 0) else f", {result.exit_code}"
    text = f"{result.outcome.value}{code}"
    if row.agrees is True:
        return text + " ✓"
    if row.agrees is False and row.prediction:
        return f"**{text}** ✗ (predicted {row.prediction.outcome.value})"
    if row.prediction and row.prediction.outcome == Predicted.BORDERLINE:
        return text + " (predicted: too close to call)"
    return text


_REPORTED_BY = re.compile(r"\(exit \d+; (?P<who>[^()]*)\)$")


def oom_reported_as(row: Row) -> str:
    """How the runtime told of the OOM kill in ``row``: its own words, or "by evidence"."""
    result = row.result
    if result is None or result.outcome != Outcome.OOM_KILLED:
        return "-"
    found = _REPORTED_BY.search(result.reason)
    if found:
        return found.group("who")
    return "exit 137 without OOMKilled: judged by the cgroup's peak at the limit"


def cost_text(cell: Cell) -> str:
    cost = cell.cost
    if cost is None:
        return "-"
    if cost.ratio is None:
        return cost.verdict.value
    swapped = cost.swap.swapin_bytes if cost.swap else None
    return f"{cost.ratio:.1f}x, {human(swapped) if swapped is not None else '?'} swapped in"


def findings(report: Report) -> list[str]:
    """Every cell whose observation is not simply the prediction, with both sides' reasons."""
    found: list[str] = []
    for engine, reason in report.unreachable.items():
        found.append(f"**{engine}** could not be reached: {reason}")
    refusals: dict[str, str] = {}
    for cell in report.cells:
        row, where = cell.row, f"**{cell.column.label}**, {cell.scenario.heading}"
        result = row.result
        if result is None:
            if cell.column.engine not in report.unreachable:
                found.append(f"{where}: not run: {row.error}")
        elif result.outcome == Outcome.REFUSED:
            refusals.setdefault(cell.column.label, result.reason)
        elif row.agrees is False and row.prediction:
            found.append(
                f"{where}: predicted {row.prediction.outcome.value}, observed "
                f"{result.outcome.value}. The rules said: {row.prediction.explanation} "
                f"What happened: {result.reason}."
            )
        elif row.prediction and row.prediction.outcome == Predicted.BORDERLINE:
            found.append(
                f"{where}: the rules could not call it ({row.prediction.explanation}); observed "
                f"{result.outcome.value}."
            )
        twin = cell.twin.result if cell.twin else None
        if cell.twin and twin and twin.outcome not in (Outcome.COMPLETED, Outcome.REFUSED):
            found.append(
                f"{where}: the unconstrained twin ({' '.join(cell.twin.run.flags())}) did not "
                f"complete: {twin.reason}; no slowdown can be given."
            )
        cost = cell.cost
        if (
            cost
            and cost.verdict == CostVerdict.NO_BASELINE
            and twin
            and twin.outcome == Outcome.COMPLETED
        ):
            found.append(f"{where}: {cost.sentence}.")
    for label, reason in refusals.items():
        found.append(
            f"**{label}** refused every container: {reason}. A runtime difference, not a "
            "memory one: the memory rules have nothing to predict there."
        )
    for label, (one, again) in cost_pairs(report).items():
        if one is not None and again is not None and again <= one:
            found.append(
                f"**{label}**: re-reading the data cost no more than one pass ({again:.1f}x vs "
                f"{one:.1f}x): the working set was not swapped back in, or the timing was noise."
            )
    return found


def cost_pairs(report: Report) -> dict[str, tuple[float | None, float | None]]:
    """Per column: the one-pass slowdown and the re-access slowdown (None where not measured)."""
    pairs: dict[str, tuple[float | None, float | None]] = {}
    for cell in report.cells:
        cost = cell.cost
        if cost is None:
            continue
        one, again = pairs.get(cell.column.label, (None, None))
        if cell.scenario.workload.reaccess:
            again = cost.ratio
        else:
            one = cost.ratio
        pairs[cell.column.label] = (one, again)
    return pairs


def longest(steps: Sequence[Step]) -> Step | None:
    return max(steps, key=lambda s: s.seconds, default=None)


def column_seconds(report: Report) -> dict[str, float]:
    """Seconds per column (its runs and twins) and per engine probe, largest first."""
    totals: dict[str, float] = {}
    for step in report.steps:
        part = step.name.split(":", 1)[0]
        totals[part] = round(totals.get(part, 0.0) + step.seconds, 3)
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


# -- writing (pure) -----------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_row(values: Sequence[str]) -> str:
    return "| " + " | ".join(_md_escape(v) for v in values) + " |"


def readme_table(report: Report) -> str:
    """The README's "Runtimes compared" table: one line per runtime, a column per scenario."""
    scenarios = list(dict.fromkeys(cell.scenario for cell in report.cells))
    cost_heads = [s.cost for s in scenarios if s.cost]
    heads = ["runtime", "host", *(s.heading for s in scenarios), *cost_heads, "OOM kill reported"]
    lines = [_md_row(heads), "|" + "---|" * len(heads)]
    by_column: dict[Column, dict[str, Cell]] = {}
    for cell in report.cells:
        by_column.setdefault(cell.column, {})[cell.scenario.key] = cell
    for column, cells in by_column.items():
        info = report.hosts.get(column.engine)
        values = [_runtime_name(column, info), _host_short(info)]
        if column.engine in report.unreachable:
            values += ["unreachable (see findings)"] * (len(heads) - 2)
        else:
            values += [cell_text(cells[s.key].row) for s in scenarios]
            values += [cost_text(cells[s.key]) for s in scenarios if s.cost]
            killed = [c.row for c in cells.values() if oom_reported_as(c.row) != "-"]
            values.append(oom_reported_as(killed[0]) if killed else "-")
        lines.append(_md_row(values))
    return "\n".join(lines) + "\n"


def _runtime_name(column: Column, info: RuntimeInfo | None) -> str:
    engine = column.engine
    if info and info.engine_version:
        engine = f"{column.engine} {info.engine_version}"
    return f"{engine} + {column.runtime}"


def _host_short(info: RuntimeInfo | None) -> str:
    if info is None:
        return "unreachable"
    swap = "?" if info.swap_total_bytes is None else human(info.swap_total_bytes)
    return (
        f"cgroup {info.cgroup_version.value}, swap {swap}, THP {info.transparent_hugepages or '?'}"
    )


def render_markdown(report: Report, charts: Sequence[str] = ()) -> str:
    found = findings(report)
    slow = longest(report.steps)
    parts = column_seconds(report)
    biggest = next(iter(parts.items()), None)
    cells = report.cells
    decided = [c for c in cells if c.row.agrees is not None]
    agreed = [c for c in decided if c.row.agrees]
    md = [
        "# oomlab report: the runtime comparison",
        "",
        f"Measured {report.started}. {len(cells)} cells on {len(report.hosts)} "
        f"engine(s); {len(agreed)} of {len(decided)} decided cells as predicted; "
        f"{len(found)} finding(s).",
        "",
        f"**Wall time {report.wall_s:.1f} s.** Longest step: "
        + (f"{slow.name} ({slow.seconds:.1f} s)" if slow else "none")
        + ("; largest part: " + f"{biggest[0]} ({biggest[1]:.1f} s)." if biggest else "."),
        "",
        "## Hosts (each runner's own `info()`)",
        "",
    ]
    for info in report.hosts.values():
        md.append(f"- {describe_host(info)}")
    for engine, reason in report.unreachable.items():
        md.append(f"- {engine}: unreachable: {reason}")
    md += [
        "",
        "## Runtimes compared",
        "",
        "Workload: bulk 1000Mi in 500Mi chunks (about 1012 MiB with the interpreter) unless the "
        "heading says otherwise. ✓: observed as predicted for that runtime's host; ✗: a finding "
        "below. Swap cost: the run's own working time (allocation plus re-access) against the "
        "same run with memory enough and no swap.",
        "",
        readme_table(report),
        "## Findings",
        "",
    ]
    md += [f"- {f}" for f in found] or ["- none: every decided cell was observed as predicted."]
    md += ["", "## Swap cost", ""]
    md += [
        "| runtime | run | verdict | time | unconstrained | swapped in | major faults | "
        "in swap at the end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in report.cells:
        cost = cell.cost
        if cost is None:
            continue
        swap = cost.swap
        md.append(
            _md_row(
                (
                    cell.column.label,
                    f"{cell.scenario.workload.describe()}, {' '.join(cell.row.run.flags())}",
                    cost.sentence,
                    "-" if cost.seconds is None else f"{cost.seconds:.2f} s",
                    "-" if cost.baseline_seconds is None else f"{cost.baseline_seconds:.2f} s",
                    "-"
                    if swap is None or swap.swapin_bytes is None
                    else f"{human(swap.swapin_bytes)} ({swap.swapin_scope})",
                    "-" if swap is None or swap.major_faults is None else f"{swap.major_faults:,}",
                    "-"
                    if swap is None or swap.swap_bytes_at_end is None
                    else human(swap.swap_bytes_at_end),
                )
            )
        )
    md += ["", "## Every cell, predicted vs observed", ""]
    md += [
        "| runtime | run | predicted | observed | why (predicted) | what happened |",
        "|---|---|---|---|---|---|",
    ]
    for cell in report.cells:
        for row in (cell.twin, cell.row):
            if row is None:
                continue
            result = row.result
            md.append(
                _md_row(
                    (
                        cell.column.label,
                        f"{row.run.workload.describe()}, {' '.join(row.run.flags())}",
                        row.prediction.outcome.value if row.prediction else "-",
                        cell_text(row),
                        row.prediction.explanation if row.prediction else "",
                        result.reason if result else row.error,
                    )
                )
            )
    if charts:
        md += ["", "## Charts", ""]
        md += [f"![{name}]({name})" for name in charts]
    md += ["", "## Where the time went", "", "| step | seconds |", "|---|---|"]
    md += [f"| {_md_escape(s.name)} | {s.seconds:.2f} |" for s in report.steps]
    md += [f"| **{name}** (total) | {seconds:.2f} |" for name, seconds in parts.items()]
    return "\n".join(md) + "\n"


def to_json(report: Report) -> dict[str, Any]:
    def cost(cell: Cell) -> dict[str, Any] | None:
        value = cell.cost
        return None if value is None else {**asdict(value), "verdict": value.verdict.value}

    return {
        "started": report.started,
        "wall_s": report.wall_s,
        "hosts": {
            k: {**asdict(v), "cgroup_version": v.cgroup_version.value}
            for k, v in report.hosts.items()
        },
        "unreachable": report.unreachable,
        "cells": [
            {
                "column": cell.column.label,
                "scenario": cell.scenario.key,
                "row": cell.row.to_dict(),
                "twin": cell.twin.to_dict() if cell.twin else None,
                "swap_cost": cost(cell),
            }
            for cell in report.cells
        ],
        "findings": findings(report),
        "steps": [asdict(step) for step in report.steps],
    }


def write(report: Report, directory: Path, *, charts: bool = True) -> list[Path]:
    """report.md, report.json, readme-table.md and the PNG charts, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    if charts:
        from oomlab.plot import plot_rows, plot_swap_cost

        started = time.monotonic()
        plot_rows([c.row for c in report.cells], directory / "runtimes.png")
        pairs = cost_pairs(report)
        plot_swap_cost(
            [(label, one, again) for label, (one, again) in pairs.items()],
            directory / "swap-cost.png",
            labels=("one pass", f"{REACCESS_PASSES} re-access passes"),
        )
        names = ["runtimes.png", "swap-cost.png"]
        seconds = round(time.monotonic() - started, 3)
        report.steps.append(Step("charts", seconds))
        report.wall_s = round(report.wall_s + seconds, 3)
    written = [directory / name for name in names]
    for name, text in (
        ("report.md", render_markdown(report, names)),
        ("readme-table.md", readme_table(report)),
        ("report.json", json.dumps(to_json(report), indent=2) + "\n"),
    ):
        (directory / name).write_text(text)
        written.append(directory / name)
    return written
