"""The node-level reads a node-scale experiment needs: the kubelet's /configz and /stats/summary,
and the kubelet's SystemOOM events on the Node.

The kubelet is asked through the API server's node proxy when the caller may (RBAC nodes/proxy:
an admin kubeconfig), else directly at the node's InternalIP and kubelet port with the caller's
own bearer token, which the kubelet's webhook authorizes as nodes/stats and nodes/configz (its
fine-grained authorization, GA in Kubernetes 1.36): the deployed operator's ClusterRole grants
those two and not nodes/proxy, which would also allow exec. None when neither answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from oomlab.kube_client import load_client_config

log = logging.getLogger("oomlab.operator.node_pressure_io")
TIMEOUT_S = 15
EVENTS_NAMESPACE = "default"
"""The kubelet records its Node events in the default namespace."""


def kubelet_address(node: Mapping[str, Any]) -> str | None:
    """https://InternalIP:port of the node's kubelet, from its status; None if it says neither."""
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = next(
        (a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"),
        None,
    )
    if not port or not address:
        return None
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{port}"


def _direct_get(api: client.ApiClient, node: str, path: str) -> dict[str, Any] | None:
    """GET ``path`` from the node's kubelet itself, with the API client's credentials and CA."""
    node_object = client.CoreV1Api(api).read_node(node)
    body = api.sanitize_for_serialization(node_object)  # type: ignore[no-untyped-call]
    address = kubelet_address(body)
    if address is None:
        log.info("node %s reports no kubelet address", node)
        return None
    method, url, headers, _, _ = api.param_serialize(
        "GET", f"/{path}", auth_settings=["BearerToken"], _host=address
    )
    response = api.call_api(method, url, header_params=headers, _request_timeout=TIMEOUT_S)
    response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        log.info("kubelet of node %s answered %s to /%s", node, response.status, path)
        return None
    data: dict[str, Any] = json.loads(response.data or b"null") or {}
    return data


def _kubelet_get(node: str, path: str) -> dict[str, Any] | None:
    api = load_client_config()
    try:
        response: Any = client.CoreV1Api(api).connect_get_node_proxy_with_path(
            node, path, _preload_content=False, _request_timeout=TIMEOUT_S
        )
        data: dict[str, Any] = json.loads(response.data or b"null") or {}
        return data
    except ApiException as exc:
        if exc.status != 403:
            log.info("cannot read %s of node %s: %s", path, node, exc)
            return None
    except (HTTPError, ValueError) as exc:
        log.info("cannot read %s of node %s: %s", path, node, exc)
        return None
    try:
        return _direct_get(api, node, path)
    except (ApiException, HTTPError, OSError, ValueError) as exc:
        log.info("cannot read %s of node %s from its kubelet: %s", path, node, exc)
        return None


def configz(node: str) -> dict[str, Any] | None:
    return _kubelet_get(node, "configz")


def read_summary(node: str) -> dict[str, Any] | None:
    return _kubelet_get(node, "stats/summary")


def system_oom_since(node: str, since: str | None) -> bool:
    """Whether the kubelet posted a SystemOOM event (the global OOM killer) on the Node at or
    after ``since`` (RFC 3339)."""
    api = client.CoreV1Api(load_client_config())
    selector = f"involvedObject.kind=Node,involvedObject.name={node},reason=SystemOOM"
    try:
        events = api.list_namespaced_event(
            EVENTS_NAMESPACE, field_selector=selector, _request_timeout=TIMEOUT_S
        )
    except (ApiException, HTTPError) as exc:
        log.info("cannot list SystemOOM events of node %s: %s", node, exc)
        return False
    for event in events.items:
        when = event.last_timestamp or event.event_time or event.first_timestamp
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ") if when is not None else None
        if since is None or (stamp is not None and stamp >= since):
            return True
    return False
