"""Experiments, pods and events in one namespace, read back the way a user would. Shared by the
operator tier and the e2e tier (pytest puts tests/, where the root conftest.py is, on sys.path)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from oomlab.pods import GROUP, PLURAL, VERSION

IMAGE = os.environ.get("OOMLAB_TEST_IMAGE", "oomlab/memhog:dev")


class Lab:
    """Experiments, pods and events in one namespace, read back the way a user would."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "OOMExperiment",
                "metadata": {"name": name}, "spec": spec}  # fmt: skip
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
