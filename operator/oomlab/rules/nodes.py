"""What a Node object says about the swap its kubelet can give (memory, swap, swapBehavior, cgroup
version, transparent hugepages, the kubelet's version), and how an experiment asks for a node by
its swap behaviour."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oomlab.rules.memory_qos import MemoryQoSSettings, settings_from_labels
from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.units import SizeError, parse_k8s_quantity

SWAP_BEHAVIOR_LABEL = "oomlab.dev/swap-behavior"
CGROUP_VERSION_LABEL = "oomlab.dev/cgroup-version"
THP_LABEL = "oomlab.dev/thp"
"""The node's transparent hugepage mode (always, madvise, never), as its kubelet read it."""
SWAP_TAINT_KEY = "oomlab.dev/swap"
"""The project's LimitedSwap nodes carry ``oomlab.dev/swap=LimitedSwap:NoSchedule``: only
experiments that ask for swap land there."""
KUBELET_VERSION_KEY = "oomlab.dev/kubelet-version"
"""A label on the project's VM nodes (their kubelet's version); on a node whose kubelet is not the
cluster's own (hack/vm-node-old.sh) also a taint ``oomlab.dev/kubelet-version=<version>``
(NoSchedule), so only experiments that ask for that kubelet (:func:`kubelet_placement`) land
there."""
FAIL_CGROUP_V1_LABEL = "oomlab.dev/fail-cgroup-v1"
"""The kubelet's ``failCgroupV1`` setting, as the node's setup states it (hack/local-cluster.sh
writes it from the same value it puts in the kubelet's configuration)."""


@dataclass(frozen=True)
class NodeFacts:
    name: str
    memory_capacity_bytes: int | None = None
    swap_capacity_bytes: int | None = None
    swap_behavior: SwapBehavior | None = None
    """From the node's ``oomlab.dev/swap-behavior`` label, when its cluster's setup put one."""
    cgroup_version: CgroupVersion | None = None
    """From ``oomlab.dev/cgroup-version`` (read from the node's kernel by its setup)."""
    thp: str | None = None
    """From ``oomlab.dev/thp``: the kernel's transparent hugepage mode, None when unlabelled."""
    kubelet_version: str | None = None
    """``status.nodeInfo.kubeletVersion`` (v1.37.2): the kubelet's rules change between versions."""
    fail_cgroup_v1: bool | None = None
    """From ``oomlab.dev/fail-cgroup-v1`` (true/false); None when unlabelled."""
    kubelet_tainted: bool = False
    """The node carries the ``oomlab.dev/kubelet-version`` taint: only experiments that ask for
    its kubelet run there."""
    memory_qos: MemoryQoSSettings = field(default_factory=MemoryQoSSettings)
    """From the ``oomlab.dev/memory-*`` labels (rules.memory_qos); empty: the version's defaults."""
    memory_allocatable_bytes: int | None = None
    """``status.allocatable.memory``: Memory QoS's memory.high base for a container without a
    limit."""


def _memory_bytes(node_status: Mapping[str, Any], section: str) -> int | None:
    """``status.<section>.memory`` in bytes; None when absent or not a quantity."""
    raw = (node_status.get(section) or {}).get("memory")
    if raw is None:
        return None
    try:
        return parse_k8s_quantity(raw, field=f"{section}.memory")
    except SizeError:
        return None


def node_facts_from_node(node: Mapping[str, Any]) -> NodeFacts:
    """Memory capacity, ``status.nodeInfo.swap.capacity`` (NodeSwap, 1.30+) and the labels the
    project's nodes carry."""
    node_status = node.get("status") or {}
    memory = _memory_bytes(node_status, "capacity")
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
    try:
        cgroup: CgroupVersion | None = CgroupVersion(str(labels.get(CGROUP_VERSION_LABEL, "")))
    except ValueError:
        cgroup = None
    thp = str(labels.get(THP_LABEL, "")) or None
    fail_cgroup_v1 = {"true": True, "false": False}.get(str(labels.get(FAIL_CGROUP_V1_LABEL, "")))
    taints = (node.get("spec") or {}).get("taints") or []
    kubelet_tainted = any(
        isinstance(t, Mapping) and t.get("key") == KUBELET_VERSION_KEY for t in taints
    )
    allocatable = _memory_bytes(node_status, "allocatable")
    kubelet_version = (node_status.get("nodeInfo") or {}).get("kubeletVersion")
    return NodeFacts(
        name=str((node.get("metadata") or {}).get("name", "")),
        memory_capacity_bytes=memory,
        swap_capacity_bytes=swap,
        swap_behavior=behavior,
        cgroup_version=None if cgroup == CgroupVersion.UNKNOWN else cgroup,
        thp=None if thp == "unknown" else thp,
        kubelet_version=kubelet_version
        if isinstance(kubelet_version, str) and kubelet_version
        else None,
        fail_cgroup_v1=fail_cgroup_v1,
        kubelet_tainted=kubelet_tainted,
        memory_qos=settings_from_labels(labels),
        memory_allocatable_bytes=allocatable,
    )


@dataclass(frozen=True)
class Placement:
    """Pod scheduling terms that send an experiment to nodes of one swap behaviour."""

    node_selector: dict[str, str]
    affinity: dict[str, Any] | None
    tolerations: list[dict[str, Any]]

    def pod_fields(
        self, node_selector: dict[str, str], tolerations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The pod spec fields of a pod with its own ``node_selector`` and ``tolerations`` once
        these terms are added (ours win a selector key; a toleration it has is not repeated);
        only the fields that are not empty."""
        fields: dict[str, Any] = {}
        selector = {**node_selector, **self.node_selector}
        if selector:
            fields["nodeSelector"] = selector
        if self.affinity:
            fields["affinity"] = self.affinity
        merged = tolerations + [t for t in self.tolerations if t not in tolerations]
        if merged:
            fields["tolerations"] = merged
        return fields


def placement_for(behavior: SwapBehavior | None) -> Placement:
    """LimitedSwap: the node labelled so, tolerating its taint. NoSwap: any node not labelled
    LimitedSwap (an unlabelled node runs the kubelet's default, NoSwap). None: no constraint."""
    if behavior == SwapBehavior.LIMITED_SWAP:
        return Placement(
            node_selector={SWAP_BEHAVIOR_LABEL: behavior.value},
            affinity=None,
            tolerations=[{"key": SWAP_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        )
    if behavior == SwapBehavior.NO_SWAP:
        term = {
            "key": SWAP_BEHAVIOR_LABEL,
            "operator": "NotIn",
            "values": [SwapBehavior.LIMITED_SWAP.value],
        }
        required = {"nodeSelectorTerms": [{"matchExpressions": [term]}]}
        return Placement(
            node_selector={},
            affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}},
            tolerations=[],
        )
    return Placement(node_selector={}, affinity=None, tolerations=[])


def kubelet_placement(kubelet_version: str) -> Placement:
    """The terms that send an experiment to the node labelled with that kubelet version, and let
    it onto such a node when it is tainted so (hack/vm-node-old.sh): an experiment's
    ``nodeSelector`` and ``tolerations``, added to its swap behaviour's."""
    return Placement(
        node_selector={KUBELET_VERSION_KEY: kubelet_version},
        affinity=None,
        tolerations=[
            {
                "key": KUBELET_VERSION_KEY,
                "operator": "Equal",
                "value": kubelet_version,
                "effect": "NoSchedule",
            }
        ],
    )
