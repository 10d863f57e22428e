"""The sweep bench's cells, pure: the OOMSweep document spanning both node kinds, the same
experiments as documents to create directly, and which node kinds have finished.

Each cell is one ``variants`` entry (as ``oomlab report`` builds its sweep): ``--cells`` small
experiments on the host's NoSwap node and ``--vm-cells`` on the LimitedSwap VM node, so the counts
need not be a product of axes. A cell asks for its node's swap behaviour, which both places the
pod (the VM node is tainted: only LimitedSwap experiments land there) and is the node kind the
sweep's ``maxRunningPerNodeKind`` counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oomlab.rules.classify import TERMINAL_PHASES as TERMINAL
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.sweep import CELL_LABEL, SWEEP_LABEL
from oomlab.sweep import plan, sweep_document

HOST_KIND = SwapBehavior.NO_SWAP.value
VM_KIND = SwapBehavior.LIMITED_SWAP.value


def _small(index: int) -> dict[str, Any]:
    """Cell ``index``'s limit and size: 4..12Mi of data under a 48Mi limit and up, far below
    it, so every cell Completes quickly (on the emulated VM node too)."""
    return {
        "resources": {"limits": {"memory": f"{48 + 8 * (index // 9)}Mi"}},
        "workload": {"size": f"{4 + index % 9}Mi"},
    }


def sweep_body(name: str, cells: int, vm_cells: int, max_running: int) -> dict[str, Any]:
    """One OOMSweep of ``cells`` small experiments on the NoSwap host node and ``vm_cells`` on
    the LimitedSwap VM node, at most ``max_running`` running per node kind. The slow VM cells
    come first, so both sides (the operator and the direct loop create in this order) start them
    before the host's."""
    variants = [
        {"name": f"{kind.lower()}-{index:03d}", "spec": {**_small(index), "swapBehavior": kind}}
        for kind, count in ((VM_KIND, vm_cells), (HOST_KIND, cells))
        for index in range(count)
    ]
    return sweep_document(
        name,
        template={
            "workload": {"mode": "bulk", "chunk": "4Mi", "imagePullPolicy": "Never"},
            "timeoutSeconds": 600,
        },
        axes={"variants": variants},
        max_running=max_running,
    )


def in_namespace(body: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "namespace": namespace}}


def node_kinds(body: Mapping[str, Any]) -> dict[str, str]:
    """Each cell's experiment name and its node kind, as the sweep plans them."""
    return {cell.name: cell.node_kind for cell in plan(body).cells}


def direct_documents(body: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The sweep's own cell documents in ``namespace``, without the labels that make them a
    sweep's cells (these are nobody's: created directly, like a user's own)."""
    documents = list(plan(in_namespace(body, namespace)).documents.values())
    for document in documents:
        labels = document["metadata"].get("labels") or {}
        for key in (SWEEP_LABEL, CELL_LABEL):
            labels.pop(key, None)
        if not labels:
            document["metadata"].pop("labels", None)
    return documents


def finished_kinds(kinds: Mapping[str, str], phases: Mapping[str, str]) -> set[str]:
    """The node kinds whose every cell's experiment exists and is terminal."""
    open_kinds = {kind for name, kind in kinds.items() if phases.get(name) not in TERMINAL}
    return set(kinds.values()) - open_kinds
