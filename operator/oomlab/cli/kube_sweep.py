"""``oomlab kube matrix --sweep``: the matrix as one OOMSweep, run by the operator, read back
from the sweep's status (its experiments, listed by the sweep's label, for the table).

The cells are the operator's to start (at most --max-running per node kind), so the command only
creates one object and watches one status: a restart of this command, or of the operator, loses
nothing. Single experiments stay on the KubernetesRunner (``oomlab kube run``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import typer
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from oomlab import kube
from oomlab.experiment import GROUP, VERSION, ExperimentSpec
from oomlab.kube_client import load_client_config
from oomlab.rules.sweep import CELL_LABEL, NO_REQUEST, NO_RUNTIME_CLASS, SWEEP_LABEL
from oomlab.sweep import SWEEP_PLURAL, sweep_document

POLL_S = 1.0


def matrix_sweep(
    name: str,
    template: ExperimentSpec,
    *,
    limits: Sequence[str],
    requests: Sequence[str],
    modes: Sequence[str],
    behaviors: Sequence[str],
    runtimes: Sequence[str],
    default_runtime: str,
    max_running: int,
    labels: dict[str, str],
) -> dict[str, Any]:
    """The OOMSweep for the matrix's options: ``template`` (its spec written by to_document, the
    one writer) with the axes; request ``limit`` is no request, runtime ``default`` none, and
    swap behaviour ``any`` no axis (it cannot share one with NoSwap or LimitedSwap)."""
    if "any" in behaviors and len(behaviors) > 1:
        raise typer.BadParameter(
            "with --sweep, 'any' cannot be mixed with NoSwap or LimitedSwap: a cell either asks "
            "for a kind of node or not",
            param_hint="--swap-behavior",
        )
    axes: dict[str, list[str]] = {
        "limits": list(limits),
        "requests": [NO_REQUEST if r == "limit" else r for r in requests],
        "modes": list(modes),
        "runtimeClassNames": [NO_RUNTIME_CLASS if r == default_runtime else r for r in runtimes],
    }
    if behaviors != ["any"]:
        axes["swapBehaviors"] = list(behaviors)
    return sweep_document(
        name, template=template.to_document(name)["spec"], axes=axes, max_running=max_running,
        labels=labels,
    )  # fmt: skip


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(load_client_config())


def run_sweep(
    namespace: str,
    body: dict[str, Any],
    *,
    timeout_s: float,
    on_status: Callable[[dict[str, Any]], None] = lambda _: None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Create the sweep, wait until its status is Done (or Invalid, or ``timeout_s`` passed),
    and return its status and its experiments in cell order."""
    name = body["metadata"]["name"]
    try:
        create_sweep(namespace, body)
    except ApiException as exc:
        raise typer.BadParameter(kube.error_message(exc), param_hint="the sweep") from None
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = sweep_status(namespace, name)
        on_status(status)
        if status.get("phase") in ("Done", "Invalid"):
            break
        time.sleep(POLL_S)
    items, _version = kube.list_experiments(namespace, label_selector=f"{SWEEP_LABEL}={name}")
    items.sort(key=lambda item: int(item["metadata"]["labels"].get(CELL_LABEL, "0")))
    return status, items


def create_sweep(namespace: str, body: dict[str, Any]) -> None:
    _custom().create_namespaced_custom_object(GROUP, VERSION, namespace, SWEEP_PLURAL, body)


def sweep_status(namespace: str, name: str) -> dict[str, Any]:
    found: Any = _custom().get_namespaced_custom_object(
        GROUP, VERSION, namespace, SWEEP_PLURAL, name
    )
    return dict(found.get("status") or {})


def sweep_exists(namespace: str, name: str) -> bool:
    try:
        _custom().get_namespaced_custom_object(GROUP, VERSION, namespace, SWEEP_PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def delete_sweep(namespace: str, name: str, *, foreground: bool = False) -> None:
    """Delete the sweep; the garbage collector deletes its experiments (and their pods), before
    the sweep itself goes when ``foreground``."""
    try:
        _custom().delete_namespaced_custom_object(
            GROUP, VERSION, namespace, SWEEP_PLURAL, name,
            propagation_policy="Foreground" if foreground else "Background",
        )  # fmt: skip
    except ApiException as exc:
        if exc.status != 404:
            raise


def sweep_summary(status: dict[str, Any]) -> str:
    return str(status.get("message") or f"sweep phase {status.get('phase', 'unknown')}")
