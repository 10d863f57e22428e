"""Thin Kubernetes I/O for the operator and the CLI: plain dicts in and out.

Every call goes through the official client with ``_preload_content=False`` so that documents are
the API server's own JSON (camelCase, every field kept), the same shape kopf hands to handlers
and the pure modules read. How the operator writes the status (read-modify-write, its alone) is
in :mod:`oomlab.operator.api`. ``oomlab parity`` writes no status: it hands its Docker run over
as an annotation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from oomlab.experiment import GROUP, PLURAL, VERSION
from oomlab.handover import OBSERVATION_ANNOTATION, observation_annotation
from oomlab.kube_client import (
    client_source,
    kubeconfig_location,
    load_client_config,
    reset_client,
)
from oomlab.rules.docker import DockerFlags
from oomlab.rules.nodes import NodeFacts, node_facts_from_node
from oomlab.rules.results import RunResult

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 15.0
MERGE_PATCH = "application/merge-patch+json"
LOG_TAIL_LINES = 40
FOLD_TIMEOUT_S = 30.0
"""How long ``oomlab parity`` waits for the operator to fold its Docker run into the status."""


class NotFound(LookupError):
    """The experiment (or another object) does not exist."""


class StatusConflict(RuntimeError):
    """The experiment kept changing under us; the caller may retry later."""


def _core() -> client.CoreV1Api:
    return client.CoreV1Api(load_client_config())


def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(load_client_config())


def _json(response: Any) -> Any:
    return json.loads(response.data or b"null")


def _request(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One client call for the raw response (the API server's own JSON), with our timeout."""
    return method(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S, **kwargs)


def _document(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """One client call whose answer is an object, as a plain dict."""
    result: dict[str, Any] = _json(_request(method, *args, **kwargs))
    return result


def _document_or_none(
    method: Callable[..., Any], *args: Any, **kwargs: Any
) -> dict[str, Any] | None:
    """:func:`_document`, or None when the object does not exist."""
    try:
        return _document(method, *args, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def error_message(exc: ApiException) -> str:
    """The API server's own sentence from an error response (its Status.message)."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc.reason or exc)


# --------------------------------------------------------------------------------------------
# experiments


def get_experiment(namespace: str, name: str) -> dict[str, Any]:
    """The experiment as the API server has it; raises :class:`NotFound`."""
    found = find_experiment(namespace, name)
    if found is None:
        raise NotFound(f"OOMExperiment {namespace}/{name} not found")
    return found


def create_experiment(namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Create an OOMExperiment; raises ApiException as the API server answered."""
    return _document(
        _custom().create_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, dict(body)
    )


def find_experiment(namespace: str, name: str) -> dict[str, Any] | None:
    """The experiment, or None when it does not exist."""
    return _document_or_none(
        _custom().get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
    )


def delete_experiment(namespace: str, name: str) -> bool:
    """Delete an experiment (its pod goes with it); False when it was already gone."""
    try:
        _request(_custom().delete_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _experiment_list_call(namespace: str) -> tuple[Callable[..., Any], str, str, str, str]:
    """The list call for the experiments in ``namespace`` and its positional arguments (listed
    once, or streamed by a watch)."""
    return _custom().list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL


def list_experiments(
    namespace: str, *, label_selector: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """The experiments (matching ``label_selector``) and the list's resourceVersion, from which
    :func:`watch_experiments` sees every later change."""
    listed = _document(*_experiment_list_call(namespace), label_selector=label_selector or "")
    return list(listed.get("items") or []), str(listed["metadata"]["resourceVersion"])


WATCH_SLACK_S = 15.0
"""How much longer than the server's own watch timeout the client waits for the next byte before
it takes the stream as dropped."""


def watch_experiments(
    namespace: str,
    resource_version: str,
    *,
    label_selector: str | None = None,
    timeout_s: int = 60,
) -> Generator[tuple[str, dict[str, Any]], None, None]:
    """One watch request: (ADDED | MODIFIED | DELETED | BOOKMARK, object) after
    ``resource_version`` until the server ends it (``timeout_s``). An ERROR event raises
    ApiException with its code (410 Gone: the version is too old, list again); a dropped
    connection raises urllib3's errors."""
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        *_experiment_list_call(namespace),
        label_selector=label_selector or "",
        resource_version=resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=timeout_s,
        _request_timeout=timeout_s + WATCH_SLACK_S,
    )
    try:
        for event in stream:
            yield str(event["type"]), dict(event["raw_object"])
    finally:
        stream.close()


OPERATOR_NAMESPACE = "oomlab-system"
OPERATOR_DEPLOYMENT = "oomlab-operator"


def operator_unavailable() -> str | None:
    """Why experiments would not be run here (no CRD, no operator Deployment available), or
    None when the deployed operator is up."""
    from kubernetes.client import ApiextensionsV1Api, AppsV1Api

    crd = f"{PLURAL}.{GROUP}"
    if (
        _document_or_none(
            ApiextensionsV1Api(load_client_config()).read_custom_resource_definition, crd
        )
        is None
    ):
        return f"the CRD {crd} is not installed (kubectl apply -k manifests/)"
    deployment = _document_or_none(
        AppsV1Api(load_client_config()).read_namespaced_deployment,
        OPERATOR_DEPLOYMENT,
        OPERATOR_NAMESPACE,
    )
    if deployment is None:
        return (
            f"the operator is not deployed ({OPERATOR_NAMESPACE}/{OPERATOR_DEPLOYMENT} not "
            "found: kubectl apply -k manifests/)"
        )
    if not (deployment.get("status") or {}).get("availableReplicas"):
        return f"the operator ({OPERATOR_NAMESPACE}/{OPERATOR_DEPLOYMENT}) has no available replica"
    return None


def patch_experiment_status(namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (``{"status": ..., "metadata": ...}``) on the status subresource;
    returns the whole object after it."""
    return _document(
        _custom().patch_namespaced_custom_object_status,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        dict(patch),
        _content_type=MERGE_PATCH,
    )


# --------------------------------------------------------------------------------------------
# pods and nodes


def create_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """Create the pod; raises ApiException (409 if it exists) as the API server answered."""
    return _document(_core().create_namespaced_pod, pod["metadata"]["namespace"], dict(pod))


def read_pod(namespace: str, name: str) -> dict[str, Any] | None:
    return _document_or_none(_core().read_namespaced_pod, name, namespace)


def delete_pod(namespace: str, name: str, *, grace_period_s: int | None = None) -> bool:
    """Delete the pod (background propagation); False when it was already gone."""
    try:
        _request(
            _core().delete_namespaced_pod,
            name,
            namespace,
            grace_period_seconds=grace_period_s,
            propagation_policy="Background",
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def resize_memory_request(namespace: str, name: str, container: str, request: str) -> None:
    """Change one container's memory request in place: the pod's ``resize`` subresource
    (in-place pod resize, GA in 1.35). ApiException carries the API server's refusal."""
    patch = {"spec": {"containers": [
        {"name": container, "resources": {"requests": {"memory": request}}}
    ]}}  # fmt: skip
    _request(_core().patch_namespaced_pod_resize, name, namespace, patch)


def read_pod_log_tail(namespace: str, name: str, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of the workload's log; [] when the log is gone or unreadable."""
    try:
        response = _request(_core().read_namespaced_pod_log, name, namespace, tail_lines=lines)
    except ApiException as exc:
        if exc.status in (400, 403, 404):
            log.info("no log for pod %s/%s: %s", namespace, name, error_message(exc))
            return []
        raise
    text: str = (response.data or b"").decode("utf-8", errors="replace")
    return text.splitlines()


def get_node_facts(name: str) -> NodeFacts | None:
    """Memory and swap capacity of a node; None when it cannot be read (gone, or no RBAC)."""
    try:
        response = _request(_core().read_node, name)
    except ApiException as exc:
        if exc.status in (403, 404):
            log.warning("cannot read node %s: %s", name, error_message(exc))
            return None
        raise
    return node_facts_from_node(_json(response))


def _items(method: Callable[..., Any], **kwargs: Any) -> list[dict[str, Any]]:
    """The items of one list call, as plain dicts."""
    return list(_document(method, **kwargs).get("items") or [])


def _items_or_none(
    what: str, list_them: Callable[[], list[dict[str, Any]]]
) -> list[dict[str, Any]] | None:
    """``list_them()``, or None when the operator may not list them (no RBAC) or the cluster has
    no such API, so the caller can leave the decision to the API server."""
    try:
        return list_them()
    except ApiException as exc:
        if exc.status in (403, 404):
            log.warning("cannot list %s: %s", what, error_message(exc))
            return None
        raise


def list_nodes_matching(label_selector: str) -> list[dict[str, Any]]:
    """Nodes matching a label selector, as the API server has them."""
    return _items(_core().list_node, label_selector=label_selector)


def read_node(name: str) -> dict[str, Any] | None:
    return _document_or_none(_core().read_node, name)


def set_node_label(name: str, key: str, value: str | None) -> None:
    """Set one label on a node (None removes it): a JSON merge patch on its metadata."""
    _request(
        _core().patch_node,
        name,
        {"metadata": {"labels": {key: value}}},
        _content_type=MERGE_PATCH,
    )


def list_nodes() -> list[dict[str, Any]] | None:
    """Every Node (labels, taints); None when they cannot be listed (no RBAC)."""
    return _items_or_none("nodes", lambda: _items(_core().list_node))


def list_runtime_classes() -> list[dict[str, Any]] | None:
    """Every node.k8s.io/v1 RuntimeClass; None when they cannot be listed (no RBAC, or a cluster
    without the API), so the caller can leave the check to the API server's admission."""
    return _items_or_none(
        "RuntimeClasses",
        lambda: _items(client.NodeV1Api(load_client_config()).list_runtime_class),
    )


# --------------------------------------------------------------------------------------------
# Docker parity


def patch_experiment_metadata(
    namespace: str, name: str, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """A JSON merge patch on the experiment's metadata only (never its status subresource)."""
    return _document(
        _custom().patch_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        {"metadata": dict(metadata)},
        _content_type=MERGE_PATCH,
    )


def record_docker_observation(
    namespace: str,
    name: str,
    result: RunResult,
    flags: DockerFlags,
    *,
    now: datetime | None = None,
) -> str:
    """Hand one Docker run to the experiment as its ``docker.oomlab.dev/observation`` annotation.

    The operator folds it into status.docker and status.parity under its own configuration; this
    writes no status (RBAC: ``patch`` on oomexperiments, not on oomexperiments/status). Returns
    the observation's ``observedAt``, which status.docker.observed.recordedAt shows once folded.
    Raises :class:`NotFound` when the experiment does not exist.
    """
    moment = now or datetime.now(UTC)
    text = observation_annotation(result, flags, moment)
    try:
        patch_experiment_metadata(namespace, name, {"annotations": {OBSERVATION_ANNOTATION: text}})
    except ApiException as exc:
        if exc.status == 404:
            raise NotFound(f"OOMExperiment {namespace}/{name} not found") from None
        raise
    observed_at: str = json.loads(text)["observedAt"]
    return observed_at


def wait_for_docker_fold(
    namespace: str,
    name: str,
    observed_at: str,
    *,
    timeout_s: float,
    poll_s: float = 0.5,
) -> dict[str, Any] | None:
    """The experiment's status once the operator folded in the run observed at ``observed_at``;
    None when it did not within ``timeout_s`` (the operator is down or busy)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = get_experiment(namespace, name).get("status") or {}
        observed = (status.get("docker") or {}).get("observed") or {}
        if observed.get("recordedAt") == observed_at:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)


__all__ = [
    "ApiException",
    "NodeFacts",
    "NotFound",
    "StatusConflict",
    "client_source",
    "create_experiment",
    "create_pod",
    "delete_experiment",
    "delete_pod",
    "error_message",
    "find_experiment",
    "get_experiment",
    "get_node_facts",
    "kubeconfig_location",
    "list_experiments",
    "list_nodes",
    "list_nodes_matching",
    "list_runtime_classes",
    "load_client_config",
    "operator_unavailable",
    "patch_experiment_metadata",
    "patch_experiment_status",
    "read_node",
    "read_pod",
    "read_pod_log_tail",
    "record_docker_observation",
    "reset_client",
    "set_node_label",
    "wait_for_docker_fold",
    "watch_experiments",
]
