"""Node -> NodeFacts: memory and swap capacity, and the swap behaviour its label names."""

from __future__ import annotations

from typing import Any

import pytest

from oomlab.rules.nodes import NodeFacts, node_facts_from_node, placement_for
from oomlab.rules.semantics import SwapBehavior


def test_node_facts() -> None:
    node = {
        "metadata": {"name": "oomlab-node"},
        "status": {
            "capacity": {"memory": "24594420Ki", "cpu": "2"},
            "nodeInfo": {"kubeletVersion": "v1.34.4", "swap": {"capacity": 2147479552}},
        },
    }
    assert node_facts_from_node(node) == NodeFacts(
        "oomlab-node", 24594420 * 1024, 2147479552, kubelet_version="v1.34.4"
    )
    no_swap = {"metadata": {"name": "n"}, "status": {"nodeInfo": {"swap": {}}}}
    assert node_facts_from_node(no_swap).swap_capacity_bytes == 0
    old_kubelet = {"metadata": {"name": "n"}, "status": {"nodeInfo": {}}}
    assert node_facts_from_node(old_kubelet).swap_capacity_bytes is None


def test_node_label_names_the_swap_behavior() -> None:
    node = {
        "metadata": {"name": "kind-worker", "labels": {"oomlab.dev/swap-behavior": "LimitedSwap"}},
        "status": {"capacity": {"memory": "8Gi"}, "nodeInfo": {"swap": {"capacity": 2**31}}},
    }
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

    node = {
        "metadata": {
            "name": "oomlab-vm",
            "labels": {
                "oomlab.dev/memory-qos": "on",
                "oomlab.dev/memory-reservation-policy": "TieredReservation",
                "oomlab.dev/memory-throttling-factor": "0.9",
            },
        },
        "status": {"allocatable": {"memory": "1391536Ki"}, "nodeInfo": {}},
    }
    facts = node_facts_from_node(node)
    assert facts.memory_qos == MemoryQoSSettings(True, ReservationPolicy.TIERED, 0.9)
    assert facts.memory_allocatable_bytes == 1391536 * 1024
    bare = node_facts_from_node({"metadata": {"name": "n"}, "status": {}})
    assert (bare.memory_qos, bare.memory_allocatable_bytes) == (MemoryQoSSettings(), None)
