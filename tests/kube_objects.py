"""Kubernetes objects as the API returns them (dicts), built from only what a test names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def node_object(
    name: str,
    labels: Mapping[str, str] | None = None,
    *,
    memory: str | None = None,
    allocatable: str | None = None,
    swap: int | None = None,
    node_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Node: ``memory`` is its status.capacity.memory, ``allocatable`` its
    status.allocatable.memory, ``swap`` its status.nodeInfo.swap.capacity (NodeSwap, 1.30+) and
    ``node_info`` any other nodeInfo fields."""
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = dict(labels)
    status: dict[str, Any] = {}
    if memory is not None:
        status["capacity"] = {"memory": memory}
    if allocatable is not None:
        status["allocatable"] = {"memory": allocatable}
    info = dict(node_info or {})
    if swap is not None:
        info["swap"] = {"capacity": swap}
    status["nodeInfo"] = info
    return {"metadata": metadata, "status": status}
