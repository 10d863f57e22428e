"""spec.nodePressure: a node-scale experiment, its fill and its bystanders, checked (pure).

A node-scale experiment fills a share (``85%``) or an amount (``1300Mi``) of its node's memory,
optionally without a container memory limit, next to "bystander" pods of chosen QoS classes that
each hold some memory, so which pod the kubelet evicts first is visible. It runs only on nodes
labelled ``oomlab.dev/node-pressure=allowed`` (the project's VM node; never the host's node).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oomlab.rules.semantics import QoSClass
from oomlab.rules.spec_errors import InvalidSpec
from oomlab.rules.units import SizeError, parse_k8s_quantity

NODE_PRESSURE_LABEL = "oomlab.dev/node-pressure"
NODE_PRESSURE_ALLOWED = "allowed"
"""The label (and value) a node carries when it may be filled; its setup puts it there."""

EVICTION_HARD_LABEL = "oomlab.dev/eviction-hard-memory"
"""The node's evictionHard memory.available, stated by its setup (when configz is not readable)."""

RECLAIM_POINT_LABEL = "oomlab.dev/reclaim-memory-available"
"""memory.available at which the node's kernel starts swapping anonymous memory (its reclaim
point), measured for the node by its setup; no label: unknown."""

MAX_BYSTANDERS = 3
_PERCENT = re.compile(r"^(\d{1,3})%$")


@dataclass(frozen=True)
class Bystander:
    """A pod that holds ``size_bytes`` on the node for the whole experiment."""

    qos: QoSClass
    size_text: str
    size_bytes: int
    request_text: str | None = None
    request_bytes: int | None = None

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {"qos": self.qos.value, "size": self.size_text}
        if self.request_text is not None:
            out["request"] = self.request_text
        return out


@dataclass(frozen=True)
class NodePressureSpec:
    fill_text: str
    fill_percent: int | None
    fill_bytes: int | None
    bystanders: tuple[Bystander, ...] = ()

    def fill_for(self, capacity_bytes: int) -> int:
        """The bytes to allocate on a node of ``capacity_bytes``."""
        if self.fill_bytes is not None:
            return self.fill_bytes
        assert self.fill_percent is not None
        return capacity_bytes * self.fill_percent // 100

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fill": self.fill_text}
        if self.bystanders:
            out["bystanders"] = [b.to_mapping() for b in self.bystanders]
        return out

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> NodePressureSpec:
        fill = str(raw.get("fill") or "")
        percent_match = _PERCENT.match(fill)
        percent: int | None = None
        amount: int | None = None
        if percent_match:
            percent = int(percent_match.group(1))
            if not 1 <= percent <= 100:
                raise InvalidSpec(
                    "spec.nodePressure.fill", f"fill {fill} must be a share from 1% to 100%"
                )
        else:
            amount = _size(fill, "spec.nodePressure.fill")
        raw_bystanders: Sequence[Any] = raw.get("bystanders") or []
        if len(raw_bystanders) > MAX_BYSTANDERS:
            raise InvalidSpec(
                "spec.nodePressure.bystanders", f"at most {MAX_BYSTANDERS} bystanders"
            )
        bystanders = tuple(
            _bystander(item, f"spec.nodePressure.bystanders[{i}]")
            for i, item in enumerate(raw_bystanders)
        )
        return cls(fill, percent, amount, bystanders)


def _bystander(raw: Mapping[str, Any], where: str) -> Bystander:
    try:
        qos = QoSClass(str(raw.get("qos")))
    except ValueError:
        allowed = ", ".join(q.value for q in QoSClass)
        raise InvalidSpec(f"{where}.qos", f"qos must be one of {allowed}") from None
    size_text = str(raw.get("size") or "")
    size = _size(size_text, f"{where}.size")
    request_text = raw.get("request")
    request: int | None = None
    if request_text is not None:
        if qos != QoSClass.BURSTABLE:
            raise InvalidSpec(
                f"{where}.request",
                f"request applies to a Burstable bystander only; a {qos.value} one sets its own",
            )
        request = _size(str(request_text), f"{where}.request")
    return Bystander(
        qos, size_text, size, None if request_text is None else str(request_text), request
    )


def _size(text: str, field_path: str) -> int:
    try:
        value = parse_k8s_quantity(text, field=field_path.removeprefix("spec."))
    except SizeError as exc:
        raise InvalidSpec(field_path, str(exc)) from None
    return value


def allows_node_pressure(labels: Mapping[str, str]) -> bool:
    return labels.get(NODE_PRESSURE_LABEL) == NODE_PRESSURE_ALLOWED


def refusal_without_allowed_node(node_names: Sequence[str], swap_behavior: str | None) -> str:
    """The Invalid sentence when no node the experiment could land on allows node pressure."""
    kind = f"{swap_behavior} " if swap_behavior else ""
    seen = ", ".join(node_names) or "none"
    return (
        f"spec.nodePressure: no {kind}node is labelled {NODE_PRESSURE_LABEL}="
        f"{NODE_PRESSURE_ALLOWED} (nodes it could use: {seen}); a node-scale experiment fills its "
        "node's memory, so it runs only on a node set up for it (the project's VM node), never "
        "on the host's own node"
    )
