"""The e2e tier: a real cluster from KUBECONFIG (the local one from ``make cluster-up`` by default,
kind in users' CI), with the operator deployed the way users deploy it: ``kubectl apply -k
manifests/``. Skips when no cluster answers or the one in KUBECONFIG is not the project's own
(tests/lab.py says how it is recognised), unless OOMLAB_REQUIRE_CLUSTER=1 (CI), where that is a
failure."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

sys.path.insert(0, str(Path(__file__).parent))

from cluster import Namespace, deploy_operator, kubeconfig

from lab import ClusterUnavailable, connect, unavailable


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
    name = f"oomlab-e2e-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {"oomlab.dev/test": "e2e"}}})
    try:
        yield Namespace(api, name)
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, propagation_policy="Background")
