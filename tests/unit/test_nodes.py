"""Node -> NodeFacts: memory and swap capacity, and the swap behaviour its label names."""

from __future__ import annotations

from typing import Any

import pytest

from kube_objects import node_object
from oomlab.rules.nodes import NodeFacts, node_facts_from_node, placement_for
from oomlab.rules.semantics import SwapBehavior


def test_node_facts() -> None:
    node = node_object(
        "oomlab-node", memory="24594420Ki", swap=2147479552, node_info={"kubeletVersion": "v1.34.4"}
    )
    assert node_facts_from_node(node) == NodeFacts(
        "oomlab-node", 24594420 * 1024, 2147479552, kubelet_version="v1.34.4"
    )
    no_swap = {"metadata": {"name": "n"}, "status": {"nodeInfo": {"swap": {}}}}
    assert node_facts_from_node(no_swap).swap_capacity_bytes == 0
    old_kubelet = {"metadata": {"name": "n"}, "status": {"nodeInfo": {}}}
    assert node_facts_from_node(old_kubelet).swap_capacity_bytes is None


def test_node_label_names_the_swap_behavior() -> None:
    labels = {"oomlab.dev/swap-behavior": "LimitedSwap"}
    node = node_object("kind-worker", labels, memory="8Gi", swap=2**31)
    facts = node_facts_from_node(node)
    assert facts.swap_behavior == SwapBehavior.LIMITED_SWAP
    assert facts.swap_capacity_bytes == 2**31
    node["metadata"]["labels"] = {"oomlab.dev/swap-behavior": "Sometimes"}
    assert node_facts_from_node(node).swap_behavior is None


@pytest.mark.parametrize(
    ("node_info", "version"),
    [
        ({"kubeletVersion": "v1.37.2"}, "v1.37.2"),
        ({"kubeletVersion": "v1.34.4"}, "v1.34.4"),
        ({"kubeletVersion": ""}, None),
        ({"kubeletVersion": 137}, None),
        ({}, None),
        (None, None),
    ],
)
def test_kubelet_version_comes_from_node_info(node_info: Any, version: str | None) -> None:
    node = {"metadata": {"name": "n"}, "status": {"nodeInfo": node_info}}
    assert node_facts_from_node(node).kubelet_version == version


def test_placement_fields_merge_with_the_pods_own_terms() -> None:
    own_toleration = {"key": "lab", "operator": "Exists"}
    limited = placement_for(SwapBehavior.LIMITED_SWAP)
    fields = limited.pod_fields(
        {"disk": "ssd", "oomlab.dev/swap-behavior": "NoSwap"},
        [own_toleration, *limited.tolerations],
    )
    assert fields == {
        "nodeSelector": {"disk": "ssd", "oomlab.dev/swap-behavior": "LimitedSwap"},
        "tolerations": [own_toleration, *limited.tolerations],
    }
    no_swap = placement_for(SwapBehavior.NO_SWAP).pod_fields({}, [])
    assert list(no_swap) == ["affinity"]
    assert placement_for(None).pod_fields({}, []) == {}


def test_memory_qos_labels_and_allocatable() -> None:
    from oomlab.rules.memory_qos import MemoryQoSSettings, ReservationPolicy

    labels = {
        "oomlab.dev/memory-qos": "on",
        "oomlab.dev/memory-reservation-policy": "TieredReservation",
        "oomlab.dev/memory-throttling-factor": "0.9",
    }
    node = node_object("oomlab-vm", labels, allocatable="1391536Ki")
    facts = node_facts_from_node(node)
    assert facts.memory_qos == MemoryQoSSettings(True, ReservationPolicy.TIERED, 0.9)
    assert facts.memory_allocatable_bytes == 1391536 * 1024
    bare = node_facts_from_node({"metadata": {"name": "n"}, "status": {}})
    assert (bare.memory_qos, bare.memory_allocatable_bytes) == (MemoryQoSSettings(), None)
