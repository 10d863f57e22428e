"""Talking to the cluster under test the way a user does: kubectl for manifests, the API for
reading experiments back. Shared by the e2e tests and the operator benchmarks."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from lab import Lab
from oomlab.pods import GROUP, LABEL_EXPERIMENT_UID, PLURAL, VERSION

ROOT = Path(__file__).resolve().parents[2]
LOCAL_KUBECONFIG = (
    Path(os.environ.get("OOMLAB_STATE", "/var/lib/oomlab")) / "cluster" / "kubeconfig"
)
OPERATOR_NAMESPACE = "oomlab-system"
OPERATOR_DEPLOYMENT = "oomlab-operator"
TERMINAL = {"Completed", "OOMKilled", "Failed", "TimedOut", "Invalid"}


def kubeconfig() -> str | None:
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    return str(LOCAL_KUBECONFIG) if LOCAL_KUBECONFIG.is_file() else None


def kubectl_bin() -> str:
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    cache = Path(os.environ.get("OOMLAB_CACHE", "/var/cache/oomlab")) / "bin"
    built = sorted(cache.glob("k8s-v*/kubectl"), reverse=True)
    if built:
        return str(built[0])
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("no kubectl: run hack/k8s-build.sh or install one")
    return found


def kubectl(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    config = kubeconfig()
    if config:
        env["KUBECONFIG"] = config
    return subprocess.run(
        [kubectl_bin(), *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
        env=env,
    )


def experiment(
    name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OOMExperiment",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def small_spec(**overrides: Any) -> dict[str, Any]:
    """A quick experiment: 16Mi held under a 64Mi limit, completes in about a second."""
    spec: dict[str, Any] = {
        "workload": {"mode": "bulk", "size": "16Mi", "chunk": "8Mi", "imagePullPolicy": "Never"},
        "resources": {"limits": {"memory": "64Mi"}},
        "timeoutSeconds": 120,
    }
    spec.update(overrides)
    return spec


class Namespace(Lab):
    """The e2e tests' view of one namespace: the shared :class:`Lab` plus whole documents."""

    def __init__(self, api: client.ApiClient, name: str) -> None:
        super().__init__(api, name)
        self.name = name

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.name, PLURAL, body
        )
        return created

    def pods_of(self, name: str) -> list[Any]:
        body = self.get(name)
        if body is None:
            return []
        uid = body["metadata"]["uid"]
        selector = f"{LABEL_EXPERIMENT_UID}={uid}"
        items: list[Any] = self.core.list_namespaced_pod(self.name, label_selector=selector).items
        return items

    def events_of(self, name: str) -> list[Any]:
        selector = f"involvedObject.kind=OOMExperiment,involvedObject.name={name}"
        items: list[Any] = self.core.list_namespaced_event(self.name, field_selector=selector).items
        return items

    def wait_for(
        self, name: str, done: Callable[[dict[str, Any]], bool], timeout: float = 180
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(name)
            if done(status):
                return status
            time.sleep(0.25)
        raise AssertionError(f"{self.name}/{name} did not get there in {timeout}s: {status}")

    def wait_terminal(self, name: str, timeout: float = 180) -> dict[str, Any]:
        return self.wait_for(name, lambda s: s.get("phase") in TERMINAL, timeout)
