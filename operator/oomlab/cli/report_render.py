"""The report written down, pure except :func:`write`: report.md (tables, findings, where the
time went), readme-table.md, report.json and the charts."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from oomlab.cli.cluster_cells import ClusterCell, host_text
from oomlab.cli.container_runs import describe_host
from oomlab.cli.report import Report
from oomlab.cli.report_findings import (
    column_seconds,
    cost_pairs,
    cost_text,
    findings,
    longest,
    oom_reported_as,
)
from oomlab.cli.report_model import REACCESS_PASSES, Cell, Column, Scenario, Step
from oomlab.rules.results import Outcome, RuntimeInfo
from oomlab.rules.units import MiB, human


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
            values += [cells[s.key].row.verdict.text() for s in scenarios]
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
    lines = []
    cost_heads = [s for s in scenarios if s.cost]
    for column in part.columns:
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
        "memory.min / low / high read by the workload | seconds | why (predicted) | "
        "what happened |",
        "|---|---|---|---|---|---|---|---|---|",
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
                    cell.memory_qos_text(),
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
                        row.verdict.text(),
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
        f"operator; {len(agreed)} of {len(decided)} decided cells as the operator predicted"
        + _held(part.cells, "swapLimitAgrees", "memory.swap.max")
        + _held(part.cells, "memoryQoS", "memory.min/low/high")
        + "."
    )


def _held(cells: Sequence[ClusterCell], key: str, what: str) -> str:
    """``; memory.swap.max as predicted in 9 of 9 cells that read it``, or "" when none did."""
    checks = [c.k8s.get(key) for c in cells]
    said = [v.get("agrees") if isinstance(v, dict) else v for v in checks]
    judged = [v for v in said if v is not None]
    if not judged:
        return ""
    return f"; {what} as predicted in {sum(1 for v in judged if v)} of {len(judged)} cells"


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
        from oomlab.cli.container_runs import row_bar
        from oomlab.cli.plot import plot_bars, plot_swap_cost

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
