"""The report's cluster cells as one OOMSweep, pure: the sweep's document, and its status and
experiments read back into the report's cells (:class:`~oomlab.cli.cluster_cells.ClusterCell`).

The report's cells are scenarios x columns, but not a product of the sweep's field axes (each
scenario has its own request and workload, each column its swap behaviour, RuntimeClass and
node), so every cell is one ``variants`` entry: the experiment's whole spec, named
``<column key>.<scenario key>``. A cell's node kind is its column's machine: the operator runs
the host node, the VM node and the second kubelet's VM at the same time, and on each machine at
most :data:`MAX_RUNNING_PER_MACHINE`, the longest cells first (:func:`longest_first`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oomlab.cli.cluster_cells import REPORT_LABEL, ClusterCell
from oomlab.rules.classify import TERMINAL_PHASES
from oomlab.rules.semantics import QoSClass, SwapBehavior
from oomlab.rules.timestamps import parse_time
from oomlab.sweep import sweep_document

MAX_RUNNING_PER_MACHINE = 2
"""Two seed pods at their 500 MiB limit fit the 1.5 GiB VM node (measured: README, "oomlab
report"); a third would not."""
SWEEP_NAME = "oomlab-report"
"""One name per namespace: a sweep left by a report that died is found and replaced."""
KEPT = "kept"
"""The report label's value on a sweep kept for kubectl (``--keep``): never replaced."""
RUNNING = "run"


def variant_name(cell: ClusterCell) -> str:
    return f"{cell.column.key}.{cell.scenario.key}"


@dataclass(frozen=True)
class PlannedCell:
    cell: ClusterCell
    spec: dict[str, Any]
    """The experiment's spec, as ``ExperimentSpec.to_document`` wrote it."""


def expected_work(cell: ClusterCell) -> tuple[int, bool]:
    """What makes a cell keep its machine long, to order by: its passes over the data, then
    whether it writes past its limit into swap (a Burstable pod on a LimitedSwap node)."""
    swaps = (
        cell.column.swap_behavior == SwapBehavior.LIMITED_SWAP
        and cell.mapping.qos == QoSClass.BURSTABLE
    )
    return 1 + cell.scenario.workload.reaccess, swaps


def longest_first(planned: Sequence[PlannedCell]) -> list[PlannedCell]:
    """The cells in the order the sweep starts them: the longest first (ties in report order),
    so that with more than one running on a machine the last to start is a short one."""
    return sorted(planned, key=lambda p: expected_work(p.cell), reverse=True)


def report_sweep(name: str, planned: Sequence[PlannedCell], *, keep: bool) -> dict[str, Any]:
    """The OOMSweep that runs ``planned``: one variant per cell, each its whole spec, the
    longest cells first."""
    variants = [
        {"name": variant_name(p.cell), "nodeKind": p.cell.column.machine, "spec": p.spec}
        for p in longest_first(planned)
    ]
    return sweep_document(
        name, template={}, axes={"variants": variants}, max_running=MAX_RUNNING_PER_MACHINE,
        labels={REPORT_LABEL: KEPT if keep else RUNNING},
    )  # fmt: skip


def _seconds(body: Mapping[str, Any]) -> float:
    """Pod start to finish as the operator recorded them (0.0 while either is unknown)."""
    k8s = (body.get("status") or {}).get("kubernetes") or {}
    if k8s.get("durationSeconds") is not None:
        return float(k8s["durationSeconds"])
    started, finished = parse_time(k8s.get("startedAt")), parse_time(k8s.get("finishedAt"))
    if started is None or finished is None:
        return 0.0
    return round((finished - started).total_seconds(), 3)


def read_back(
    planned: Sequence[PlannedCell],
    status: Mapping[str, Any],
    experiments: Sequence[Mapping[str, Any]],
    *,
    finished_waiting: bool,
) -> list[ClusterCell]:
    """Each planned cell with its experiment's body (by the sweep row of its variant), or why it
    has none: a cell the operator found invalid says the operator's sentence; one not finished
    when ``finished_waiting`` (the report stopped waiting) says so, as does a missing row."""
    rows = {str(r.get("variant")): r for r in status.get("cells") or [] if r.get("variant")}
    bodies = {str((e.get("metadata") or {}).get("name")): e for e in experiments}
    done = []
    for each in planned:
        cell = each.cell
        row = rows.get(variant_name(cell))
        if row is None:
            if finished_waiting:
                cell.error = (
                    f"the sweep has no row for this cell ({_sweep_text(status)}; an operator "
                    "without the sweep's variants axis makes none)"
                )
            done.append(cell)
            continue
        cell.name = str(row.get("experiment") or "")
        body = bodies.get(cell.name)
        if body is not None:
            cell.body = dict(body)
            cell.seconds = _seconds(body)
        if row.get("phase") == "Invalid" and body is None:
            cell.error = f"the operator found it invalid: {row.get('message') or '?'}"
        elif finished_waiting and cell.observed not in TERMINAL_PHASES:
            phase = row.get("phase") or "not started"
            cell.error = f"not finished when the report stopped waiting (phase {phase})"
        done.append(cell)
    return done


def newly_finished(status: Mapping[str, Any], seen: set[str]) -> list[Mapping[str, Any]]:
    """The sweep rows that finished since ``seen`` (updated): for the progress bar."""
    fresh = []
    for row in status.get("cells") or []:
        variant = str(row.get("variant") or "")
        if variant and variant not in seen and row.get("phase") in TERMINAL_PHASES:
            seen.add(variant)
            fresh.append(row)
    return fresh


def _sweep_text(status: Mapping[str, Any]) -> str:
    return str(status.get("message") or f"sweep phase {status.get('phase', 'unknown')}")
