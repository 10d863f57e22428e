"""The node-level reads a node-scale experiment needs: the kubelet's /configz and /stats/summary
through the API server's node proxy (RBAC nodes/proxy; None without it), and the kubelet's
SystemOOM events on the Node."""

from __future__ import annotations

import json
import logging
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from oomlab.kube_client import load_client_config

log = logging.getLogger("oomlab.operator.node_pressure_io")
TIMEOUT_S = 15
EVENTS_NAMESPACE = "default"
"""The kubelet records its Node events in the default namespace."""


def _proxy_get(node: str, path: str) -> dict[str, Any] | None:
    api = client.CoreV1Api(load_client_config())
    try:
        response: Any = api.connect_get_node_proxy_with_path(
            node, path, _preload_content=False, _request_timeout=TIMEOUT_S
        )
        data: dict[str, Any] = json.loads(response.data or b"null") or {}
        return data
    except (ApiException, HTTPError, ValueError) as exc:
        log.info("cannot read %s of node %s: %s", path, node, exc)
        return None


def configz(node: str) -> dict[str, Any] | None:
    return _proxy_get(node, "configz")


def read_summary(node: str) -> dict[str, Any] | None:
    return _proxy_get(node, "stats/summary")


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
