"""The e2e tier: a real cluster from KUBECONFIG (the local one from ``make cluster-up`` by default,
kind in users' CI), with the operator deployed the way users deploy it: ``kubectl apply -k
manifests/``. Skips when no cluster answers, unless OOMLAB_REQUIRE_CLUSTER=1 (CI), where that
is a failure."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

sys.path.insert(0, str(Path(__file__).parent))

from cluster import (
    OPERATOR_DEPLOYMENT,
    OPERATOR_NAMESPACE,
    ROOT,
    Namespace,
    kubeconfig,
    kubectl,
)


def _unavailable(reason: str) -> None:
    if os.environ.get("OOMLAB_REQUIRE_CLUSTER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def api() -> client.ApiClient:
    path = kubeconfig()
    if path is None:
        _unavailable("no KUBECONFIG and no local cluster: run make cluster-up")
    try:
        config.load_kube_config(config_file=path)  # type: ignore[no-untyped-call]
        api = client.ApiClient()
        client.VersionApi(api).get_code(_request_timeout=5)
    except Exception as exc:  # any failure to reach the cluster
        _unavailable(f"the cluster at {path} does not answer: {exc}")
    return api


@pytest.fixture(scope="session")
def operator(api: client.ApiClient) -> Iterator[None]:
    """Deploy CRD, RBAC and operator with kustomize, and wait for the operator to be ready."""
    kubectl("apply", "-k", str(ROOT / "manifests"))
    kubectl("wait", "--for=condition=Established", "crd/oomexperiments.oomlab.dev", "--timeout=60s")
    # a rebuilt image under the same tag needs a new pod to take effect
    kubectl("-n", OPERATOR_NAMESPACE, "rollout", "restart", f"deployment/{OPERATOR_DEPLOYMENT}")
    kubectl(
        "-n", OPERATOR_NAMESPACE, "rollout", "status", f"deployment/{OPERATOR_DEPLOYMENT}",
        "--timeout=180s",
    )  # fmt: skip
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
