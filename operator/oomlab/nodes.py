"""What a Node object says about the swap its kubelet can give: memory, swap, swapBehavior."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oomlab.semantics import SwapBehavior
from oomlab.units import SizeError, parse_k8s_quantity

SWAP_BEHAVIOR_LABEL = "oomlab.dev/swap-behavior"


@dataclass(frozen=True)
class NodeFacts:
    name: str
    memory_capacity_bytes: int | None = None
    swap_capacity_bytes: int | None = None
    swap_behavior: SwapBehavior | None = None
    """From the node's ``oomlab.dev/swap-behavior`` label, when its cluster's setup put one."""


def node_facts_from_node(node: Mapping[str, Any]) -> NodeFacts:
    """Memory capacity and ``status.nodeInfo.swap.capacity`` (NodeSwap, 1.30+) of a Node."""
    node_status = node.get("status") or {}
    memory: int | None = None
    raw_memory = (node_status.get("capacity") or {}).get("memory")
    if raw_memory is not None:
        try:
            memory = parse_k8s_quantity(raw_memory, field="capacity.memory")
        except SizeError:
            memory = None
    swap_info = (node_status.get("nodeInfo") or {}).get("swap")
    swap: int | None = None
    if isinstance(swap_info, Mapping):
        capacity = swap_info.get("capacity")
        swap = int(capacity) if isinstance(capacity, int | float) else 0
    labels = (node.get("metadata") or {}).get("labels") or {}
    try:
        behavior: SwapBehavior | None = SwapBehavior(str(labels.get(SWAP_BEHAVIOR_LABEL, "")))
    except ValueError:
        behavior = None
    return NodeFacts(
        name=str((node.get("metadata") or {}).get("name", "")),
        memory_capacity_bytes=memory,
        swap_capacity_bytes=swap,
        swap_behavior=behavior,
    )
