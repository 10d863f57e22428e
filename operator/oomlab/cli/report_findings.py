"""The report's judgement, pure: every cell whose observation is not simply its prediction (a
finding, with both sides' reasons), how each OOM kill was reported, what swap cost, and where
the time went."""

from __future__ import annotations

import re
from collections.abc import Sequence

from oomlab.cli.container_runs import Row
from oomlab.cli.report import Report
from oomlab.cli.report_model import Cell, Step
from oomlab.rules.results import Outcome, Predicted
from oomlab.rules.swapcost import CostVerdict
from oomlab.rules.units import human

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
        if (k8s.get("memoryQoS") or {}).get("agrees") is False:
            found.append(f"{where}: memory.min / low / high {cell.memory_qos_text()}.")
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


def largest_group(report: Report) -> tuple[str, float] | None:
    return max(report.groups.items(), key=lambda kv: kv[1], default=None)
