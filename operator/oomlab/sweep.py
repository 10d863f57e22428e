"""An OOMSweep: its resource names, and its cells as OOMExperiment documents.

The cells come from the pure rules (:mod:`oomlab.rules.sweep`); each cell's document is written
by ``ExperimentSpec.to_document``, the one writer of an OOMExperiment, after the same checks
every experiment gets. A cell that fails them is reported, never created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oomlab.experiment import GROUP, VERSION, ExperimentSpec, InvalidSpec
from oomlab.rules.sweep import Cell, SweepError, cell_labels, expand

SWEEP_PLURAL = "oomsweeps"
SWEEP_KIND = "OOMSweep"


def sweep_document(
    name: str,
    *,
    template: Mapping[str, Any],
    axes: Mapping[str, list[Any]],
    max_running: int,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An OOMSweep document: ``template`` (an OOMExperiment's spec) crossed with ``axes``, at
    most ``max_running`` cells running per node kind."""
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": SWEEP_KIND,
        "metadata": metadata,
        "spec": {
            "template": dict(template),
            "axes": dict(axes),
            "maxRunningPerNodeKind": max_running,
        },
    }


@dataclass(frozen=True)
class SweepPlan:
    cells: list[Cell]
    documents: dict[str, dict[str, Any]]
    """Each valid cell's OOMExperiment document, by cell name (no owner yet: the operator adopts
    it into the sweep)."""
    invalid: dict[str, str]
    """Each invalid cell's name and the sentence saying why it cannot run."""
    error: str | None = None
    """Why the sweep as a whole cannot be expanded (then there are no cells)."""


def plan(sweep: Mapping[str, Any], *, max_bytes: int | None = None) -> SweepPlan:
    """The sweep's cells, their documents, and the cells that cannot run."""
    metadata = sweep.get("metadata") or {}
    name = str(metadata.get("name", ""))
    namespace = metadata.get("namespace")
    try:
        cells = expand(name, sweep.get("spec") or {})
    except SweepError as exc:
        return SweepPlan(cells=[], documents={}, invalid={}, error=str(exc))
    documents: dict[str, dict[str, Any]] = {}
    invalid: dict[str, str] = {}
    for cell in cells:
        try:
            spec = ExperimentSpec.from_spec(cell.spec, max_bytes=max_bytes)
            documents[cell.name] = spec.to_document(
                cell.name, namespace=namespace, labels=cell_labels(name, cell)
            )
        except InvalidSpec as exc:
            invalid[cell.name] = str(exc)
        except SweepError as exc:
            return SweepPlan(cells=[], documents={}, invalid={}, error=str(exc))
    return SweepPlan(cells=cells, documents=documents, invalid=invalid)
