"""What the operator benchmarks share: the e2e tests' cluster helpers (this module puts them on
sys.path, so a benchmark imports them from here), a watcher of one namespace, and the guard that
the cluster is the project's own."""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, watch

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "e2e")]

from cluster import (  # noqa: E402
    deploy_operator,
    experiment,
    kubeconfig,
    kubectl,
    operator_rss_bytes,
    small_spec,
)

from lab import ClusterUnavailable, connect, wait_for  # noqa: E402
from oomlab.experiment import (  # noqa: E402
    ANNOTATION_EXPERIMENT,
    GROUP,
    PLURAL,
    VERSION,
    ExperimentSpec,
    build_pod,
)
from oomlab.rules.classify import TERMINAL_PHASES as TERMINAL  # noqa: E402


class Watcher:
    """One namespace's pods and experiments as they change, each first sighting stamped with this
    process's monotonic clock. It lists first and watches from the list's resourceVersion, so
    nothing created after the constructor returns is missed."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.terminated: dict[str, float] = {}  # experiment -> its pod's container terminated
        self.final: dict[str, float] = {}  # experiment -> its status reached a terminal phase
        self.phase: dict[str, str] = {}  # experiment -> that terminal phase
        self.pods_of: dict[str, set[str]] = defaultdict(set)  # experiment -> uids of its pods
        self.pod_seen: dict[str, float] = {}  # pod -> first seen
        self.pod_done: dict[str, float] = {}  # pod -> phase Succeeded or Failed
        self._stop = threading.Event()
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        pods = core.list_namespaced_pod(namespace)
        for pod in pods.items:
            self._pod(pod)
        experiments = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        for body in experiments["items"]:
            self._experiment(body)
        self.threads = [
            threading.Thread(
                target=self._follow, daemon=True,
                args=(core.list_namespaced_pod, (namespace,), pods.metadata.resource_version,
                      self._pod),
            ),
            threading.Thread(
                target=self._follow, daemon=True,
                args=(custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, PLURAL),
                      experiments["metadata"]["resourceVersion"], self._experiment),
            ),
        ]  # fmt: skip
        for thread in self.threads:
            thread.start()

    def _follow(
        self, lister: Any, args: tuple[str, ...], version: str, seen: Callable[[Any], None]
    ) -> None:
        stream = watch.Watch()
        while not self._stop.is_set():
            for event in stream.stream(lister, *args, resource_version=version, timeout_seconds=5):
                seen(event["object"])
            version = stream.resource_version or version

    def _pod(self, pod: Any) -> None:
        now = time.monotonic()
        self.pod_seen.setdefault(pod.metadata.name, now)
        owner = (pod.metadata.annotations or {}).get(ANNOTATION_EXPERIMENT)
        if owner:
            self.pods_of[owner].add(pod.metadata.uid)
            if any(s.state.terminated for s in pod.status.container_statuses or []):
                self.terminated.setdefault(owner, now)
        if pod.status.phase in ("Succeeded", "Failed"):
            self.pod_done.setdefault(pod.metadata.name, now)

    def _experiment(self, body: dict[str, Any]) -> None:
        phase = (body.get("status") or {}).get("phase")
        if phase in TERMINAL:
            name = body["metadata"]["name"]
            self.final.setdefault(name, time.monotonic())
            self.phase.setdefault(name, phase)

    def stop(self) -> None:
        self._stop.set()


def bare_pod(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The pod the operator builds for ``spec``, as a user would create it: no oomlab labels or
    annotations (the operator never sees it), only ``oomlab.dev/bench=bare``."""
    pod = build_pod(name, namespace, uuid.uuid4().hex, ExperimentSpec.from_spec(spec))
    pod["metadata"]["labels"] = {"oomlab.dev/bench": "bare"}
    pod["metadata"].pop("annotations", None)
    return pod


def project_cluster() -> client.ApiClient:
    """The cluster in KUBECONFIG (else the local one), if it is the project's own: benchmarks
    restart the operator and create hundreds of pods."""
    path = kubeconfig()
    if path is None:
        raise SystemExit("no KUBECONFIG and no local cluster: run make cluster-up")
    try:
        return connect(path)
    except ClusterUnavailable as exc:
        raise SystemExit(f"{Path(sys.argv[0]).name}: {exc}") from None


def start_operator_bench(
    parser: argparse.ArgumentParser,
) -> tuple[argparse.Namespace, client.ApiClient]:
    """How an operator benchmark starts: its arguments, the project's cluster (else exit) and
    the operator deployed afresh from this checkout."""
    args = parser.parse_args()
    api = project_cluster()
    deploy_operator()
    return args, api


__all__ = [
    "Watcher",
    "bare_pod",
    "deploy_operator",
    "experiment",
    "kubectl",
    "operator_rss_bytes",
    "project_cluster",
    "small_spec",
    "start_operator_bench",
    "wait_for",
]
