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
def limited_swap_node(api: client.ApiClient) -> dict[str, Any]:
    """The Ready node labelled oomlab.dev/swap-behavior=LimitedSwap, as the API returns it."""
    nodes = client.CoreV1Api(api).list_node(label_selector="oomlab.dev/swap-behavior=LimitedSwap")
    for node in nodes.items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        if ready:
            found: dict[str, Any] = api.sanitize_for_serialization(node)
            return found
    reason = "no Ready LimitedSwap node in the cluster: hack/vm-node.sh up adds one"
    if os.environ.get("OOMLAB_REQUIRE_LIMITED_SWAP") == "1":
        pytest.fail(reason)
    pytest.skip(f"allowed skip: {reason} (OOMLAB_REQUIRE_LIMITED_SWAP is not 1)")
