"""The real operator (kopf's KopfRunner, in this process) against the real API server in
KUBECONFIG. Every test gets its own namespace and its own operator instance watching only that
namespace, so nothing here touches other namespaces or races an operator deployed in the cluster.

Skipped, with the reason, when KUBECONFIG is unset, the API server does not answer, the cluster is
not the project's own (tests/lab.py says how it is recognised), or the CRD is not installed
(``kubectl apply -f manifests/crd/``); under OOMLAB_REQUIRE_CLUSTER=1 each of those is a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from kopf.testing import KopfRunner
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab import ClusterUnavailable, Lab, connect, scratch_namespace, unavailable, wait_for
from oomlab import kube
from oomlab.experiment import GROUP, PLURAL


@pytest.fixture(scope="session")
def api_client() -> client.ApiClient:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        unavailable("KUBECONFIG is not set: no cluster to run the operator against")
    try:
        api = connect(kubeconfig)
    except ClusterUnavailable as exc:
        unavailable(str(exc))
    try:
        client.ApiextensionsV1Api(api).read_custom_resource_definition(
            f"{PLURAL}.{GROUP}", _request_timeout=5
        )
    except ApiException as exc:
        unavailable(f"CRD {PLURAL}.{GROUP} is not installed ({exc.status}): kubectl apply -f "
                   "manifests/crd/")  # fmt: skip
    deployed = client.AppsV1Api(api).list_deployment_for_all_namespaces(
        label_selector="app.kubernetes.io/name=oomlab,app.kubernetes.io/component=operator",
        _request_timeout=5,
    )
    running = [f"{d.metadata.namespace}/{d.metadata.name}" for d in deployed.items
               if (d.spec.replicas or 0) > 0]  # fmt: skip
    if running:
        unavailable(
            f"an operator is deployed in the cluster ({', '.join(running)}); it would race "
            "this tier's own operator (tests/e2e covers the deployed one)"
        )
    kube.reset_client()
    return api


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    with scratch_namespace(api_client, "oomlab-op", "operator") as name:
        yield name


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def run_operator(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., contextlib.AbstractContextManager[KopfRunner]]:
    """``with run_operator(env={...}) as runner:`` runs the operator on this test's namespace."""

    @contextlib.contextmanager
    def running(env: dict[str, str] | None = None) -> Iterator[KopfRunner]:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        args = [
            "run", "--standalone", "--namespace", namespace, "-m", "oomlab.operator.handlers",
            f"--liveness={liveness}",
        ]  # fmt: skip
        with KopfRunner(args, timeout=60) as runner:
            # kopf serves the probe once its startup handlers are done and its watchers started
            wait_for(lambda: answers(liveness), 30, f"the operator's liveness probe {liveness}")
            yield runner

    return running


@pytest.fixture
def lab(api_client: client.ApiClient, namespace: str) -> Lab:
    return Lab(api_client, namespace)
