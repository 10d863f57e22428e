"""An OOMSweep's status from its cells and its experiments' statuses: pure, dicts in, dicts out.

A row per cell (what was predicted and observed, the swap limit, parity, swap cost), counts by
outcome, how many predictions held, and whether the sweep is done. A cell whose spec is not a
valid experiment gets a row (phase Invalid, the sentence saying why) and no experiment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from oomlab.rules.classify import Phase
from oomlab.rules.sweep import Cell


class SweepPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    DONE = "Done"
    INVALID = "Invalid"


INVALID_CELL = "Invalid"
"""The outcome counted for a cell whose spec is not a valid experiment (never created)."""


_UNFINISHED = (Phase.PENDING.value, Phase.RUNNING.value)


@dataclass(frozen=True)
class SweepSummary:
    status: dict[str, Any]
    """status.phase, progress, total, finished, predictionsHeld/Missed/Unknown, counts, cells,
    message (conditions are the caller's: they carry timestamps)."""
    done: bool
    message: str


def phase_of_experiment(body: Mapping[str, Any] | None) -> Phase | None:
    raw = ((body or {}).get("status") or {}).get("phase")
    try:
        return Phase(raw) if raw else None
    except ValueError:
        return None


def prediction_held(kubernetes: Mapping[str, Any]) -> bool | None:
    """Did the operator's prediction for the node hold? None until both sides are known, or when
    the rules could not call it (Borderline)."""
    predicted, observed = kubernetes.get("predictedOutcome"), kubernetes.get("outcome")
    if not predicted or not observed or predicted == "Borderline":
        return None
    return bool(predicted == observed)


def cell_row(
    cell: Cell, experiment: Mapping[str, Any] | None, invalid: str | None = None
) -> dict[str, Any]:
    """One cell as the sweep's status shows it."""
    row: dict[str, Any] = {"cell": cell.index, "experiment": cell.name, "nodeKind": cell.node_kind}
    resources = cell.spec.get("resources") or {}
    workload = cell.spec.get("workload") or {}
    row.update(
        _present(
            limit=_text((resources.get("limits") or {}).get("memory")),
            request=_text((resources.get("requests") or {}).get("memory")),
            swapBehavior=cell.spec.get("swapBehavior"),
            runtimeClassName=cell.spec.get("runtimeClassName"),
            mode=workload.get("mode"),
            size=workload.get("size"),
            variant=(cell.axes.get("variants") or {}).get("name"),
        )
    )
    if invalid is not None:
        row.update(phase=INVALID_CELL, message=invalid)
        return row
    if experiment is None:
        return row
    status = experiment.get("status") or {}
    kubernetes = status.get("kubernetes") or {}
    row.update(
        _present(
            phase=status.get("phase") or Phase.PENDING.value,
            node=kubernetes.get("nodeName"),
            predicted=kubernetes.get("predictedOutcome"),
            observed=kubernetes.get("outcome"),
            predictedSwapBytes=kubernetes.get("predictedSwapBytes"),
            swapLimitBytes=kubernetes.get("swapLimitBytes"),
            swapLimitAgrees=kubernetes.get("swapLimitAgrees"),
            parity=(status.get("parity") or {}).get("result"),
            swapCost=(status.get("swapCost") or {}).get("summary"),
            held=prediction_held(kubernetes),
        )
    )
    if status.get("phase") == Phase.INVALID.value:
        row["message"] = status.get("message")
    return row


def summarize(
    cells: Sequence[Cell],
    experiments: Mapping[str, Mapping[str, Any]],
    invalid: Mapping[str, str],
) -> SweepSummary:
    """The sweep's status: ``experiments`` are its cells' experiments by name (absent: not
    created yet), ``invalid`` the cells that cannot run, with the sentence why."""
    rows = [cell_row(c, experiments.get(c.name), invalid.get(c.name)) for c in cells]
    counts: dict[str, int] = {}
    finished = held = missed = 0
    for row in rows:
        phase = row.get("phase")
        if phase is None or phase in _UNFINISHED:
            continue
        finished += 1
        outcome = str(row.get("observed") or phase)
        counts[outcome] = counts.get(outcome, 0) + 1
        if row.get("held") is True:
            held += 1
        elif row.get("held") is False:
            missed += 1
    total = len(rows)
    started = sum(1 for c in cells if c.name in experiments)
    done = total > 0 and finished == total
    if not cells:
        sweep_phase = SweepPhase.INVALID
    elif done:
        sweep_phase = SweepPhase.DONE
    elif started:
        sweep_phase = SweepPhase.RUNNING
    else:
        sweep_phase = SweepPhase.PENDING
    unknown = finished - held - missed
    message = (
        f"{finished}/{total} cells finished; predictions: {held} held, {missed} missed, "
        f"{unknown} unknown."
    )
    if invalid:
        message += f" {len(invalid)} cell(s) are not valid experiments (see their rows)."
    status = {
        "phase": sweep_phase.value,
        "progress": f"{finished}/{total}",
        "total": total,
        "finished": finished,
        "running": sum(
            1
            for cell, row in zip(cells, rows, strict=True)
            if cell.name in experiments and row.get("phase") in _UNFINISHED
        ),
        "predictionsHeld": held,
        "predictionsMissed": missed,
        "predictionsUnknown": unknown,
        "counts": counts,
        "cells": rows,
        "message": message,
    }
    return SweepSummary(status=status, done=done, message=message)


def _present(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
