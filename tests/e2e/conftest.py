"""The e2e tier: a real cluster from KUBECONFIG (the local one from ``make cluster-up`` by default,
kind in users' CI), with the operator deployed the way users deploy it: ``kubectl apply -k
manifests/``. Skips when no cluster answers or the one in KUBECONFIG is not the project's own
(tests/lab.py says how it is recognised), unless OOMLAB_REQUIRE_CLUSTER=1 (CI), where that is a
failure."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

sys.path.insert(0, str(Path(__file__).parent))

from cluster import Namespace, deploy_operator, kubeconfig

from lab import ClusterUnavailable, connect, scratch_namespace, unavailable
from oomlab.rules.nodes import node_facts_from_node

KUBELET_CHOICE = "OOMLAB_E2E_KUBELET"
"""A kubelet version (v1.34.4): the LimitedSwap checks run on the LimitedSwap node whose kubelet it
is (make test-e2e-old-kubelet), instead of the cluster's own."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that runs on a LimitedSwap node is marked limited_swap: ``-m limited_swap``
    picks the LimitedSwap checks (make test-e2e-old-kubelet)."""
    for item in items:
        if {"limited_swap_node", "limited_swap_nodes"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.limited_swap)


@pytest.fixture(scope="session")
def api() -> client.ApiClient:
    path = kubeconfig()
    if path is None:
        unavailable("no KUBECONFIG and no local cluster: run make cluster-up")
    try:
        return connect(path)
    except ClusterUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def operator(api: client.ApiClient) -> Iterator[None]:
    """Deploy CRD, RBAC and operator with kustomize, and wait for the operator to be ready."""
    deploy_operator()
    yield


@pytest.fixture
def ns(api: client.ApiClient, operator: None) -> Iterator[Namespace]:
    with scratch_namespace(api, "oomlab-e2e", "e2e") as name:
        yield Namespace(api, name)


@pytest.fixture(scope="session")
def limited_swap_nodes(api: client.ApiClient) -> list[dict[str, Any]]:
    """Every Ready node labelled oomlab.dev/swap-behavior=LimitedSwap, as the API returns them:
    the VM node first, then any tainted for its kubelet version (hack/vm-node-old.sh)."""
    nodes = client.CoreV1Api(api).list_node(label_selector="oomlab.dev/swap-behavior=LimitedSwap")
    found: list[dict[str, Any]] = [
        api.sanitize_for_serialization(node)
        for node in nodes.items
        if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
    ]
    found.sort(key=lambda n: (node_facts_from_node(n).kubelet_tainted, n["metadata"]["name"]))
    if found:
        return found
    reason = "no Ready LimitedSwap node in the cluster: hack/vm-node.sh up adds one"
    if os.environ.get("OOMLAB_REQUIRE_LIMITED_SWAP") == "1":
        pytest.fail(reason)
    pytest.skip(f"allowed skip: {reason} (OOMLAB_REQUIRE_LIMITED_SWAP is not 1)")


@pytest.fixture(scope="session")
def limited_swap_node(limited_swap_nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The LimitedSwap node the checks run on: the one whose kubelet is $OOMLAB_E2E_KUBELET when
    that is set, else the one an experiment that asks only for LimitedSwap lands on (not tainted
    for its kubelet version). Tests send their experiments and pods there with
    cluster.with_kubelet_of (a node tainted for its kubelet must be asked for by that version)."""
    wanted = os.environ.get(KUBELET_CHOICE)
    if wanted:
        chosen = [
            n for n in limited_swap_nodes if node_facts_from_node(n).kubelet_version == wanted
        ]
        if chosen:
            return chosen[0]
        pytest.fail(
            f"no Ready LimitedSwap node with kubelet {wanted} ({KUBELET_CHOICE}): make "
            "vm-node-old-up adds one with the older kubelet"
        )
    ordinary = [n for n in limited_swap_nodes if not node_facts_from_node(n).kubelet_tainted]
    if ordinary:
        return ordinary[0]
    reason = "every LimitedSwap node is tainted for its kubelet version: hack/vm-node.sh up"
    if os.environ.get("OOMLAB_REQUIRE_LIMITED_SWAP") == "1":
        pytest.fail(reason)
    pytest.skip(f"allowed skip: {reason} (OOMLAB_REQUIRE_LIMITED_SWAP is not 1)")
