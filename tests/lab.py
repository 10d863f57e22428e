"""The cluster under test and one namespace in it, read back the way a user would. Shared by the
operator tier, the e2e tier and the operator benchmarks (pytest puts tests/, where the root
conftest.py is, on sys.path).

These tiers restart, scale and apply things, so they only touch the project's own clusters: the
kubeconfig's current cluster must be ``oomlab`` (hack/local-cluster.sh writes that name) or
``kind-oomlab`` (kind names clusters ``kind-<name>``; hack/kind-up.sh's default name is oomlab).
``OOMLAB_ALLOW_FOREIGN_CLUSTER=1`` allows any other.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from oomlab.experiment import GROUP, PLURAL, VERSION, ExperimentSpec

IMAGE = os.environ.get("OOMLAB_TEST_IMAGE", "oomlab/memhog:dev")
PROJECT_CLUSTERS = ("oomlab", "kind-oomlab")
ALLOW_FOREIGN = "OOMLAB_ALLOW_FOREIGN_CLUSTER"


class ClusterUnavailable(Exception):
    """No cluster answers, or the one that does is not the project's to change."""


def refusal(cluster: str | None, allow_foreign: bool) -> str | None:
    """Why the tests must leave this cluster alone, or None when it is the project's own."""
    if allow_foreign or cluster in PROJECT_CLUSTERS:
        return None
    return (
        f"the kubeconfig's current cluster is {cluster!r}, not one of this project's "
        f"({', '.join(PROJECT_CLUSTERS)}), and these tests restart, scale and apply things: "
        f"point KUBECONFIG at the project's cluster, or set {ALLOW_FOREIGN}=1 to use this one"
    )


def current_cluster(kubeconfig: str) -> str | None:
    """The cluster name of the kubeconfig's current context (kubectl's view of "this cluster")."""
    _, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    name = (active or {}).get("context", {}).get("cluster")
    return str(name) if name else None


def connect(kubeconfig: str) -> client.ApiClient:
    """An API client for the project's cluster in ``kubeconfig``, once it answers."""
    try:
        cluster = current_cluster(kubeconfig)
    except Exception as exc:  # a missing file, a config without contexts: no cluster to use
        raise ClusterUnavailable(f"cannot read the kubeconfig {kubeconfig}: {exc}") from exc
    reason = refusal(cluster, os.environ.get(ALLOW_FOREIGN) == "1")
    if reason:
        raise ClusterUnavailable(reason)
    try:
        config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        api = client.ApiClient()
        client.VersionApi(api).get_code(_request_timeout=5)
    except Exception as exc:  # any failure to reach the cluster
        raise ClusterUnavailable(f"the cluster in {kubeconfig} does not answer: {exc}") from exc
    return api


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail where a cluster is required (OOMLAB_REQUIRE_CLUSTER=1: make test-e2e, CI)."""
    if os.environ.get("OOMLAB_REQUIRE_CLUSTER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def vm_node(core: client.CoreV1Api) -> dict[str, Any]:
    """The first LimitedSwap node (the VM node), as a plain mapping; unavailable without one."""
    nodes = core.list_node(label_selector="oomlab.dev/swap-behavior=LimitedSwap").items
    if not nodes:
        unavailable("no LimitedSwap node: hack/vm-node.sh up (make cluster-up) makes one")
    return client.ApiClient().sanitize_for_serialization(nodes[0])  # type: ignore[no-any-return]


@contextlib.contextmanager
def scratch_namespace(api: client.ApiClient, prefix: str, tier: str) -> Iterator[str]:
    """A new namespace ``PREFIX-<random>`` labelled ``oomlab.dev/test=TIER``, deleted (in the
    background) on the way out."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {"oomlab.dev/test": tier}}})
    try:
        yield name
    finally:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, propagation_policy="Background")


class Lab:
    """Experiments, pods and events in one namespace, read back the way a user would."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = ExperimentSpec.from_spec(spec).to_document(name)
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def status(self, name: str) -> dict[str, Any]:
        found = self.get(name) or {}
        status: dict[str, Any] = found.get("status") or {}
        return status

    def wait_phase(self, name: str, phases: set[str], timeout: float = 120) -> dict[str, Any]:
        return wait_for(
            lambda: (s := self.status(name)).get("phase") in phases and s,
            timeout,
            f"{name} to reach {sorted(phases)}",
            lambda: str(self.status(name)),
        )

    def pods(self, uid: str) -> list[dict[str, Any]]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"oomlab.dev/experiment-uid={uid}"
        )
        return [client.ApiClient().sanitize_for_serialization(p) for p in pods.items]

    def events(self, name: str) -> list[dict[str, Any]]:
        found = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return [client.ApiClient().sanitize_for_serialization(e) for e in found.items]

    def wait_event(self, name: str, reason: str, timeout: float = 30) -> list[dict[str, Any]]:
        """All of the experiment's events, once one with ``reason`` is among them (the operator
        posts events in the background, after the status)."""

        def with_reason() -> list[dict[str, Any]] | None:
            events = self.events(name)
            return events if any(e["reason"] == reason for e in events) else None

        found: list[dict[str, Any]] = wait_for(
            with_reason,
            timeout,
            f"a {reason} event on {name}",
            lambda: str([e["reason"] for e in self.events(name)]),
        )
        return found


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, describe: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {describe()}")
