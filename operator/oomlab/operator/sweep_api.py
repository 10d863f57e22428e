"""The sweep controller's Kubernetes I/O: read a sweep, write its status, create a cell's
experiment. Plain dicts in and out, as :mod:`oomlab.kube` does for experiments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from oomlab import kube
from oomlab.experiment import GROUP, VERSION
from oomlab.kube_client import load_client_config
from oomlab.rules.sweep import SWEEP_LABEL
from oomlab.sweep import SWEEP_PLURAL

REQUEST_TIMEOUT_S = 15.0
MERGE_PATCH = "application/merge-patch+json"


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(load_client_config())


def find_sweep(namespace: str, name: str) -> dict[str, Any] | None:
    """The sweep, or None when it does not exist."""
    try:
        found = _custom().get_namespaced_custom_object(
            GROUP, VERSION, namespace, SWEEP_PLURAL, name, _request_timeout=REQUEST_TIMEOUT_S
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return cast(dict[str, Any], found)


def patch_sweep_status(namespace: str, name: str, patch: Mapping[str, Any]) -> None:
    """A JSON merge patch of the sweep's status (its one writer is this operator)."""
    _custom().patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        SWEEP_PLURAL,
        name,
        {"status": dict(patch)},
        _content_type=MERGE_PATCH,
        _request_timeout=REQUEST_TIMEOUT_S,
    )


def create_cell(namespace: str, document: Mapping[str, Any]) -> str | None:
    """Create a cell's experiment unless it exists (created before a restart, or by a second
    look at the same events). Returns None, or the API server's sentence when it refused the
    document (the cell cannot run)."""
    try:
        kube.create_experiment(namespace, document)
    except ApiException as exc:
        if exc.status == 409:
            return None
        if exc.status in (400, 403, 422):
            return kube.error_message(exc)
        raise
    return None


def list_cells(namespace: str, sweep: str, sweep_uid: str) -> dict[str, dict[str, Any]]:
    """The sweep's experiments by name: those labelled with its name and owned by this
    incarnation of it (one left by a deleted sweep of the same name is not its cell)."""
    items, _version = kube.list_experiments(namespace, label_selector=f"{SWEEP_LABEL}={sweep}")
    owned = {}
    for item in items:
        owners = (item.get("metadata") or {}).get("ownerReferences") or []
        if any(owner.get("uid") == sweep_uid for owner in owners):
            owned[str(item["metadata"]["name"])] = item
    return owned
