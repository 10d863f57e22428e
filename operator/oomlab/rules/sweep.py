"""An OOMSweep's cells: the axes expanded, each cell's name, and which cells to start next.

Pure: the sweep's spec (a mapping as the API server holds it) in, plain data out. A cell's spec is
the OOMExperiment spec of its experiment; :mod:`oomlab.sweep` turns it into the document (through
``ExperimentSpec.to_document``, the one writer). Names depend only on the sweep's name and the
cell's index, and the spec cannot change after creation, so an operator that restarts finds the
same cells under the same names: it creates what is absent and never a second copy.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oomlab.rules.classify import Phase

MAX_CELLS = 200
"""The CRD's CEL rule refuses a sweep of more cells (the product of the axes' lengths)."""

DEFAULT_MAX_RUNNING = 2
"""Experiments of one node kind running at once when spec.maxRunningPerNodeKind is unset."""

SWEEP_LABEL = "oomlab.dev/sweep"
"""On each cell's experiment: the sweep's name (so its experiments are listed by selector)."""
CELL_LABEL = "oomlab.dev/sweep-cell"
"""On each cell's experiment: the cell's index in the sweep."""

NO_REQUEST = "none"
"""In axes.requests: this cell sets no memory request (Kubernetes then requests the limit)."""
NO_RUNTIME_CLASS = ""
"""In axes.runtimeClassNames: the node's default runtime (no RuntimeClass)."""
ANY_NODE = "any"
"""The node kind of a cell that neither names a node selection nor asks for a swap behaviour."""

AXES = (
    "limits", "requests", "swapBehaviors", "runtimeClassNames", "modes", "sizes", "nodes",
    "variants",
)  # fmt: skip
"""The axes in the order they vary: the last one changes fastest from one cell to the next.
``variants`` are named partial specs merged into the template: a list of cells that is not a
product (``oomlab report``'s scenarios x columns) is one sweep with one variant per cell."""

NAME_ROOM = 63
"""Cell names stay within a label value's 63 characters (the sweep's name is a label value)."""


class SweepError(ValueError):
    """The sweep cannot be expanded as written (the CRD's rules let it through)."""


@dataclass(frozen=True)
class Cell:
    index: int
    name: str
    node_kind: str
    spec: dict[str, Any]
    """The experiment's spec: the template with this cell's axis values set."""
    axes: dict[str, Any]
    """The axis values of this cell (only the axes the sweep has), for its row in the status."""


def cell_name(sweep: str, index: int) -> str:
    """``<sweep>-<index>``, the sweep's name cut so the result fits :data:`NAME_ROOM`."""
    suffix = f"-{index:03d}"
    stem = sweep[: NAME_ROOM - len(suffix)].rstrip("-.")
    return f"{stem}{suffix}"


def axis_values(spec: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The sweep's axes that have values, in :data:`AXES` order."""
    axes = spec.get("axes") or {}
    return {axis: list(axes[axis]) for axis in AXES if axes.get(axis)}


def cell_count(spec: Mapping[str, Any]) -> int:
    count = 1
    for values in axis_values(spec).values():
        count *= len(values)
    return count


def max_running(spec: Mapping[str, Any]) -> int:
    return int(spec.get("maxRunningPerNodeKind") or DEFAULT_MAX_RUNNING)


def expand(sweep: str, spec: Mapping[str, Any]) -> list[Cell]:
    """Every cell of the sweep named ``sweep``, in a fixed order (the first axis varies slowest).

    Raises :class:`SweepError` for more than :data:`MAX_CELLS` cells or a template that is not a
    mapping; a cell whose spec is not a valid experiment is for the caller to find (the rules of
    an experiment live with ExperimentSpec).
    """
    template = spec.get("template")
    if not isinstance(template, Mapping):
        raise SweepError("spec.template must be an OOMExperiment spec (a mapping)")
    axes = axis_values(spec)
    total = cell_count(spec)
    if total > MAX_CELLS:
        raise SweepError(f"the axes make {total} cells; a sweep holds at most {MAX_CELLS}")
    cells = []
    for index, values in enumerate(itertools.product(*axes.values())):
        chosen = dict(zip(axes, values, strict=True))
        cell_spec = _cell_spec(template, chosen)
        cells.append(
            Cell(
                index=index,
                name=cell_name(sweep, index),
                node_kind=node_kind(cell_spec, chosen.get("nodes"), chosen.get("variants")),
                spec=cell_spec,
                axes=chosen,
            )
        )
    return cells


def _cell_spec(template: Mapping[str, Any], chosen: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(dict(template))
    if "variants" in chosen:  # first: the other axes set their field over it
        spec = _merged(spec, chosen["variants"].get("spec") or {})
    resources = spec.setdefault("resources", {})
    if "limits" in chosen:
        resources.setdefault("limits", {})["memory"] = chosen["limits"]
    if "requests" in chosen:
        if chosen["requests"] == NO_REQUEST:
            (resources.get("requests") or {}).pop("memory", None)
            if not resources.get("requests"):
                resources.pop("requests", None)
        else:
            resources.setdefault("requests", {})["memory"] = chosen["requests"]
    if "swapBehaviors" in chosen:
        spec["swapBehavior"] = chosen["swapBehaviors"]
    if "runtimeClassNames" in chosen:
        if chosen["runtimeClassNames"] == NO_RUNTIME_CLASS:
            spec.pop("runtimeClassName", None)
        else:
            spec["runtimeClassName"] = chosen["runtimeClassNames"]
    workload = spec.setdefault("workload", {})
    if "modes" in chosen:
        workload["mode"] = chosen["modes"]
    if "sizes" in chosen:
        workload["size"] = chosen["sizes"]
    if "nodes" in chosen:
        selector = dict(spec.get("nodeSelector") or {})
        selector.update(chosen["nodes"].get("nodeSelector") or {})
        if selector:
            spec["nodeSelector"] = selector
        tolerations = list(spec.get("tolerations") or [])
        tolerations += [t for t in chosen["nodes"].get("tolerations") or [] if t not in tolerations]
        if tolerations:
            spec["tolerations"] = tolerations
    return spec


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = _merged(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def node_kind(
    cell_spec: Mapping[str, Any],
    node_choice: Mapping[str, Any] | None,
    variant: Mapping[str, Any] | None = None,
) -> str:
    """What the scheduler counts running experiments by: the variant's ``nodeKind``, else the
    name of the node selection the cell uses, else the swap behaviour it asks for (the project's
    node kinds: the NoSwap host, the LimitedSwap VM), else :data:`ANY_NODE`."""
    if variant is not None and variant.get("nodeKind"):
        return str(variant["nodeKind"])
    if node_choice is not None and node_choice.get("name"):
        return str(node_choice["name"])
    behavior = cell_spec.get("swapBehavior")
    return str(behavior) if behavior else ANY_NODE


def cells_to_start(
    cells: Sequence[Cell],
    phases: Mapping[str, Phase | None],
    max_per_kind: int,
    *,
    skip: frozenset[str] = frozenset(),
) -> list[Cell]:
    """The cells whose experiments to create now, lowest index first.

    ``phases`` maps each existing experiment's name to its phase (None: created, no status
    yet); a cell absent from it has no experiment. An experiment that is not terminal runs (or
    waits for a node) and takes one of its node kind's ``max_per_kind`` places; ``skip`` names
    cells never to start (their spec is invalid).
    """
    running: dict[str, int] = {}
    for cell in cells:
        if cell.name in phases:
            phase = phases[cell.name]
            if phase is None or not phase.terminal:
                running[cell.node_kind] = running.get(cell.node_kind, 0) + 1
    chosen = []
    for cell in cells:
        if cell.name in phases or cell.name in skip:
            continue
        if running.get(cell.node_kind, 0) < max_per_kind:
            running[cell.node_kind] = running.get(cell.node_kind, 0) + 1
            chosen.append(cell)
    return chosen


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def cell_labels(sweep: str, cell: Cell) -> dict[str, str]:
    """The labels of a cell's experiment: which sweep, which cell."""
    if len(sweep) > NAME_ROOM or not _LABEL_VALUE.match(sweep):
        raise SweepError(f"sweep name {sweep!r} is not a label value (at most 63 characters)")
    return {SWEEP_LABEL: sweep, CELL_LABEL: str(cell.index)}
