"""An experiment's RuntimeClass, checked against the cluster: does it exist, and can a node that
offers it also give the swap behaviour the experiment asked for? Pure: documents in, sentences out.

The API server checks the name's shape (the CRD's DNS-1123 rule); this checks what only the
cluster knows, so that a typo or a contradiction ends in Invalid with a sentence instead of a pod
that never schedules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oomlab.rules.nodes import SWAP_BEHAVIOR_LABEL, placement_for
from oomlab.rules.semantics import SwapBehavior

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DEFAULT_HANDLER = "default"
"""What status.kubernetes.runtimeHandler says without a RuntimeClass: the node's default
runtime (containerd's default_runtime_name; runc on the project's nodes)."""


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= 253 and DNS1123_SUBDOMAIN.match(name) is not None


@dataclass(frozen=True)
class RuntimeClassFacts:
    name: str
    handler: str
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)


def runtime_class_from_doc(doc: Mapping[str, Any]) -> RuntimeClassFacts:
    """A node.k8s.io/v1 RuntimeClass as the API server returns it."""
    scheduling = doc.get("scheduling") or {}
    return RuntimeClassFacts(
        name=str((doc.get("metadata") or {}).get("name", "")),
        handler=str(doc.get("handler", "")),
        node_selector=dict(scheduling.get("nodeSelector") or {}),
        tolerations=list(scheduling.get("tolerations") or []),
    )


@dataclass(frozen=True)
class NodeView:
    """What scheduling looks at: a node's name, labels and taints."""

    name: str
    labels: dict[str, str]
    taints: list[dict[str, Any]]


def node_view(node: Mapping[str, Any]) -> NodeView:
    meta = node.get("metadata") or {}
    return NodeView(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        taints=list((node.get("spec") or {}).get("taints") or []),
    )


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """The scheduler's rule for one toleration against one taint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if operator == "Exists":
        return not key or key == taint.get("key")
    return key == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def admits(
    node: NodeView,
    selector: Mapping[str, str],
    tolerations: Sequence[Mapping[str, Any]],
    behavior: SwapBehavior | None,
) -> bool:
    """Could a pod with this selector, these tolerations and this swap behaviour land here?"""
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return False
    hard = [t for t in node.taints if t.get("effect") in ("NoSchedule", "NoExecute")]
    if not all(any(tolerates(tol, taint) for tol in tolerations) for taint in hard):
        return False
    placed = placement_for(behavior)
    if any(node.labels.get(k) != v for k, v in placed.node_selector.items()):
        return False
    if behavior == SwapBehavior.NO_SWAP:
        return node.labels.get(SWAP_BEHAVIOR_LABEL) != SwapBehavior.LIMITED_SWAP.value
    return True


@dataclass(frozen=True)
class RuntimeClassCheck:
    """The verdict on spec.runtimeClassName: the handler that will run it, or why it cannot."""

    handler: str | None = None
    reason: str = ""
    """Empty when fine; RuntimeClassNotFound or RuntimeClassUnschedulable otherwise."""
    message: str = ""


def _selector_text(selector: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(selector.items())) or "(any node)"


def check_runtime_class(
    name: str,
    classes: Sequence[RuntimeClassFacts],
    nodes: Sequence[NodeView],
    *,
    swap_behavior: SwapBehavior | None,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, Any]] = (),
) -> RuntimeClassCheck:
    """Exists? And when nodes offer it, does one of them also meet swapBehavior?

    No node offering the class at all (a node still booting) is not a contradiction: the pod
    waits for one like any other. Only "the nodes that offer it all run the other swap
    behaviour" is."""
    existing = sorted(c.name for c in classes)
    found = next((c for c in classes if c.name == name), None)
    if found is None:
        if existing:
            there = f"the ones that do are {', '.join(existing)}"
        else:
            there = "this cluster has none"
        return RuntimeClassCheck(
            reason="RuntimeClassNotFound",
            message=(
                f"RuntimeClass {name!r} does not exist in this cluster ({there}): use one of "
                "those, or leave runtimeClassName out to run on the node's default runtime."
            ),
        )
    selector = {**(node_selector or {}), **found.node_selector}
    own_tolerations = [*tolerations, *placement_for(swap_behavior).tolerations, *found.tolerations]
    offering = [n for n in nodes if admits(n, selector, own_tolerations, None)]
    if swap_behavior is None or not offering:
        return RuntimeClassCheck(handler=found.handler)
    if any(admits(n, selector, own_tolerations, swap_behavior) for n in offering):
        return RuntimeClassCheck(handler=found.handler)
    others = [c.name for c in classes if c.name != name]
    offered_by = ", ".join(
        f"{n.name} ({n.labels.get(SWAP_BEHAVIOR_LABEL, 'NoSwap, unlabelled')})" for n in offering
    )
    alternative = (
        SwapBehavior.NO_SWAP
        if swap_behavior == SwapBehavior.LIMITED_SWAP
        else SwapBehavior.LIMITED_SWAP
    )
    instead = f"use swapBehavior {alternative.value}"
    if others:
        instead += f", or another runtimeClassName ({', '.join(others)})"
    return RuntimeClassCheck(
        handler=found.handler,
        reason="RuntimeClassUnschedulable",
        message=(
            f"RuntimeClass {name!r} (handler {found.handler}) runs only on nodes with "
            f"{_selector_text(selector)}: {offered_by}; none of them is a "
            f"{swap_behavior.value} node, so the pod could never be scheduled: {instead}."
        ),
    )
