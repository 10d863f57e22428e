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

import fnmatch
import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oomlab.cli.container_runs import Row, describe_host, docker_prediction
from oomlab.rules.results import Outcome, Predicted, RuntimeInfo
from oomlab.rules.swapcost import CostVerdict, SwapCost, swap_cost, twin_memory_bytes
from oomlab.rules.units import MiB, human
from oomlab.rules.workload import DEFAULT_IMAGE, Mode, WorkloadSpec
from oomlab.runners import ContainerRun, ContainerRunner, EngineError, container_runner

if TYPE_CHECKING:
    from oomlab.cli.report_cluster import ClusterPart

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
    cluster: ClusterPart | None = None
    """The cluster's columns (report_cluster), when they were asked for."""
    groups: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each group of columns that ran at the same time (one per machine)."""


# -- running ------------------------------------------------------------------------------------


def planned_runs(cols: Sequence[Column], scenarios: Sequence[Scenario]) -> int:
    return len(cols) * sum(2 if s.cost else 1 for s in scenarios)


def planned_cluster_cells(cluster: bool, scenarios: Sequence[Scenario] = SCENARIOS) -> int:
    if not cluster:
        return 0
    from oomlab.cli.report_cluster import planned_cells

    return planned_cells(scenarios)


def skip_reason(skip: Sequence[str], column: str, scenario: str) -> str:
    """Why a cell is left out on purpose (``--skip COLUMN:SCENARIO``, shell globs), or ""."""
    for pattern in skip:
        where, _, what = pattern.rpartition(":")
        if fnmatch.fnmatchcase(column, where or "*") and fnmatch.fnmatchcase(scenario, what):
            return f"skipped to keep the report's wall time in budget (--skip '{pattern}')"
    return ""


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
) -> Report:
    """Every scenario on every column, in order; an unreachable engine or a refusing runtime is
    a row with its reason, never a crash; a cell ``skip`` names is a row saying so."""
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
                if on_step:
                    on_step(name)
                observed.append(_observe(report, name, runner, each))
                if on_done:
                    on_done(observed[-1])
            twin = observed[0] if scenario.cost else None
            report.cells.append(Cell(column, scenario, observed[-1], twin))
    report.wall_s = round(time.monotonic() - started, 3)
    return report


def machine_of(engine: str) -> str:
    """Engines on the same machine share its CPU and memory and run one after another; engines
    on different machines (the host, a VM reached as ``docker@vm``) may run at the same time."""
    where = engine.split("@", 1)[1] if "@" in engine else ""
    return "host engines" if not where or where.startswith("unix:") else f"{where} engines"


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
) -> Report:
    """:func:`measure` per machine, and the cluster's columns, each group in its own thread: the
    wall time is the slowest group's, not the sum. One group runs in this thread (Ctrl-C then
    stops it as before)."""
    started = time.monotonic()
    by_machine: dict[str, list[Column]] = {}
    for column in cols:
        by_machine.setdefault(machine_of(column.engine), []).append(column)
    jobs: dict[str, Callable[[], Any]] = {}
    for machine, group in by_machine.items():

        def engines(group: list[Column] = group) -> Report:
            return measure(
                group, scenarios, image=image, timeout_s=timeout_s, on_step=on_step,
                on_done=on_done, skip=skip,
            )  # fmt: skip

        jobs[machine] = engines
    if cluster:
        from oomlab.cli.report_cluster import measure_cluster

        def on_cluster() -> ClusterPart:
            return measure_cluster(
                scenarios, image=image, timeout_s=cluster_timeout_s, on_step=on_step,
                on_done=on_cluster_done, skip=skip,
            )  # fmt: skip

        jobs["cluster"] = on_cluster
    report = Report(started=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    parts: dict[str, Any] = {}
    if len(jobs) == 1:
        parts = {name: job() for name, job in jobs.items()}
    else:
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = {name: pool.submit(job) for name, job in jobs.items()}
            parts = {name: future.result() for name, future in futures.items()}
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
    return found + cluster_findings(report)


def cluster_findings(report: Report) -> list[str]:
    """The cluster's columns: unreachable ones, rows no OOMExperiment can express, and every cell
    whose status outcome is not the operator's own prediction (or whose swap limit is not)."""
    part = report.cluster
    if part is None:
        return []
    found = [f"**{label}** could not be reached: {why}" for label, why in part.unreachable.items()]
    if "cluster" in part.unreachable:
        return found
    for key, mapping in part.mapping.items():
        if mapping.not_run:
            heading = next((c.scenario.heading for c in part.cells if c.scenario.key == key), key)
            found.append(f"**the cluster's columns**, {heading}: not run: {mapping.not_run}.")
    for cell in part.cells:
        where = f"**{cell.column.label}**, {cell.scenario.heading} ({cell.mapping.text()})"
        k8s, status = cell.k8s, cell.status
        if cell.error and cell.column.label not in part.unreachable and not cell.mapping.not_run:
            found.append(f"{where}: not run: {cell.error}")
        elif cell.agrees is False:
            found.append(
                f"{where}: the operator predicted {cell.predicted}, the pod was "
                f"{cell.observed}. The rules said: {k8s.get('explanation', '')} What "
                f"happened: {status.get('message', '')}"
            )
        elif cell.observed is not None and cell.predicted == "Borderline":
            found.append(
                f"{where}: the operator could not call it ({k8s.get('explanation', '')}); "
                f"observed {cell.observed}."
            )
        elif cell.observed is not None and cell.predicted is None:
            found.append(
                f"{where}: {cell.observed} with no prediction in the status: "
                f"{status.get('message', '')}"
            )
        if k8s.get("swapLimitAgrees") is False:
            found.append(f"{where}: swap limit {cell.swap_text()}.")
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
    cluster_cells = report.cluster.cells if report.cluster else []
    scenarios = list(
        dict.fromkeys([c.scenario for c in report.cells] + [c.scenario for c in cluster_cells])
    )
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
    lines += cluster_table_lines(report, scenarios)
    return "\n".join(lines) + "\n"


def cluster_table_lines(report: Report, scenarios: Sequence[Scenario]) -> list[str]:
    """The cluster's columns as lines of the runtime table (cells show the Kubernetes mapping in
    the report's own mapping table; swap cost is not measured through the operator)."""
    part = report.cluster
    if part is None:
        return []
    from oomlab.cli.report_cluster import CLUSTER_COLUMNS, host_text

    lines = []
    cost_heads = [s for s in scenarios if s.cost]
    for column in CLUSTER_COLUMNS:
        cells = {c.scenario.key: c for c in part.cells if c.column == column}
        why = part.unreachable.get(column.label) or part.unreachable.get("cluster")
        values = [f"{column.label}, via the operator", host_text(list(cells.values()))]
        if why:
            values += [f"unreachable: {why}"] * (len(scenarios) + len(cost_heads) + 1)
        else:
            values += [cells[s.key].text() if s.key in cells else "-" for s in scenarios]
            values += ["not measured on the cluster"] * len(cost_heads)
            killed = [c.oom_reported_as() for c in cells.values() if c.oom_reported_as() != "-"]
            values.append(killed[0] if killed else "-")
        lines.append(_md_row(values))
    return lines


def cluster_markdown(report: Report) -> list[str]:
    """The mapping from each Docker scenario to its Kubernetes equivalent, and every cluster cell
    predicted (by the operator) vs observed (its status)."""
    part = report.cluster
    if part is None:
        return []
    md = [
        "## The cluster's columns: each Docker scenario as an OOMExperiment",
        "",
        "The operator runs each row as one OOMExperiment (`swapBehavior` picks the node, "
        "`runtimeClassName` the runtime). Docker's `500m` is 500 MiB, so the limit is `500Mi`; "
        "no swap is a Guaranteed pod; swap S is the smallest Burstable request whose LimitedSwap "
        "share (request / node memory x node swap) is at least S. The same pod on the NoSwap "
        "node gets no swap: that is the comparison. Predicted: `status.kubernetes."
        "predictedOutcome` (the operator's rules for the node it ran on); observed: "
        "`status.kubernetes.outcome`.",
        "",
    ]
    if "cluster" in part.unreachable:
        return [*md, f"Not reachable: {part.unreachable['cluster']}", ""]
    md += ["| Docker scenario | Kubernetes equivalent | why |", "|---|---|---|"]
    headings = {c.scenario.key: c.scenario.heading for c in part.cells}
    for key, mapping in part.mapping.items():
        md.append(_md_row((headings.get(key, key), mapping.text(), mapping.why or "-")))
    md += [
        "",
        "| runtime | run | predicted | observed | memory.swap.max read by the workload | "
        "seconds | why (predicted) | what happened |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cell in part.cells:
        md.append(
            _md_row(
                (
                    cell.column.label,
                    f"{cell.scenario.workload.describe()}, {cell.mapping.text()}",
                    cell.predicted or "-",
                    cell.text(),
                    cell.swap_text(),
                    f"{cell.seconds:.1f}" if cell.seconds else "-",
                    str(cell.k8s.get("explanation") or ""),
                    str(cell.status.get("message") or cell.error),
                )
            )
        )
    return [*md, ""]


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
        f"{len(found)} finding(s).{cluster_summary(report)}",
        "",
        f"**Wall time {report.wall_s:.1f} s.** Longest step: "
        + (f"{slow.name} ({slow.seconds:.1f} s)" if slow else "none")
        + ("; largest part: " + f"{biggest[0]} ({biggest[1]:.1f} s)." if biggest else "."),
        *groups_sentence(report),
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
        *cluster_markdown(report),
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


def cluster_summary(report: Report) -> str:
    """The cluster's share of the summary line (its cells are counted apart from the engines')."""
    part = report.cluster
    if part is None:
        return ""
    decided = [c for c in part.cells if c.agrees is not None]
    agreed = [c for c in decided if c.agrees]
    columns = {c.column for c in part.cells}
    return (
        f" The cluster: {len(part.cells)} cells on {len(columns)} column(s) through the "
        f"operator; {len(agreed)} of {len(decided)} decided cells as the operator predicted."
    )


def groups_sentence(report: Report) -> list[str]:
    """When groups of columns ran at the same time: each group's wall time (the report's is the
    slowest's), and that timings were taken with the other groups running."""
    if len(report.groups) < 2:
        return []
    slowest = max(report.groups.items(), key=lambda kv: kv[1])
    each = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.groups.items())
    return [
        "",
        f"Groups of columns on different machines ran at the same time ({each}); the wall time "
        f"is the slowest group's, {slowest[0]}. Every timing (and so every swap-cost ratio) was "
        "taken with the other groups running on the same 2 host cores.",
    ]


def largest_group(report: Report) -> tuple[str, float] | None:
    return max(report.groups.items(), key=lambda kv: kv[1], default=None)


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
        "groups": report.groups,
        "cluster": cluster_json(report),
    }


def cluster_json(report: Report) -> dict[str, Any] | None:
    part = report.cluster
    if part is None:
        return None
    return {
        "unreachable": part.unreachable,
        "mapping": {key: asdict(mapping) for key, mapping in part.mapping.items()},
        "cells": [
            {
                "column": cell.column.label,
                "scenario": cell.scenario.key,
                "experiment": cell.name,
                "kubernetes": cell.mapping.text(),
                "predicted": cell.predicted,
                "observed": cell.observed,
                "agrees": cell.agrees,
                "error": cell.error or None,
                "seconds": cell.seconds,
                "status": cell.status or None,
            }
            for cell in part.cells
        ],
    }


def cluster_bars(report: Report) -> list[Any]:
    """The cluster's cells on the limits chart: the limit, the swap the kernel really set (as
    the workload read it; the prediction while unread), the demand, and the outcome."""
    if report.cluster is None:
        return []
    from oomlab.cli.plot import Bar

    bars = []
    for cell in report.cluster.cells:
        if "cluster" in report.cluster.unreachable:
            break
        k8s = cell.k8s
        swap = k8s.get("swapLimitBytes")
        swap = k8s.get("predictedSwapBytes") if swap is None else swap
        observed = cell.observed
        try:
            outcome = Outcome(observed) if observed else Outcome.REFUSED
        except ValueError:
            outcome = Outcome.FAILED
        limit = cell.mapping.limit
        bars.append(
            Bar(
                label=f"{cell.column.label} {cell.scenario.workload.mode.value}\n"
                f"{cell.mapping.text()}",
                memory_bytes=int(limit.removesuffix("Mi")) * MiB if limit.endswith("Mi") else 0,
                swap_bytes=max(0, int(swap or 0)),
                demand_bytes=cell.scenario.workload.demand_bytes(),
                peak_bytes=k8s.get("peakBytes"),
                outcome=outcome,
                note=cell.error,
            )
        )
    return bars


def write(report: Report, directory: Path, *, charts: bool = True) -> list[Path]:
    """report.md, report.json, readme-table.md and the PNG charts, in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    if charts:
        from oomlab.cli.plot import plot_bars, plot_swap_cost, row_bar

        started = time.monotonic()
        bars = [row_bar(c.row) for c in report.cells] + cluster_bars(report)
        plot_bars(bars, directory / "runtimes.png")
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
