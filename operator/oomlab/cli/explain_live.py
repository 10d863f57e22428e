"""What ``oomlab explain`` reads from a live cluster, and only reads.

Every request goes through :class:`AuditedApiClient`, which records its method and path before it
is sent (the exec websocket too), so the command can show, and a test can prove, that it made no
write: GETs of the pod, its node, the nodes' kubelet configuration (``configz``, where RBAC
allows) and the exec connect that runs ``cat`` on the container's own cgroup files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from oomlab.rules.semantics import SwapBehavior

REQUEST_TIMEOUT_S = 20.0
EXEC_TIMEOUT_S = 60.0
"""An exec on the emulated VM node takes seconds; a minute is room enough."""

V2_FILES = ("memory.max", "memory.swap.max", "memory.high")
V1_FILES = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
CGROUP_ROOT = "/sys/fs/cgroup"
"""Where a container sees its own cgroup (v2 with a private cgroup namespace; on v1 under
``memory/``)."""


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    """Path and query as sent, without the server's address."""


class AuditedApiClient(client.ApiClient):
    """An API client that records every request it is asked to make.

    Every generated API method builds its request with ``param_serialize`` before it is sent,
    whether by the REST client or, for exec, by the websocket transport (which replaces
    ``call_api`` but not this), so recording here misses nothing the client sends.
    """

    def __init__(self, configuration: client.Configuration) -> None:
        super().__init__(configuration)
        self.requests: list[ApiRequest] = []

    def param_serialize(self, method: str, resource_path: str, *args: Any, **kwargs: Any) -> Any:
        serialized = super().param_serialize(method, resource_path, *args, **kwargs)
        url = urlsplit(serialized[1])
        self.requests.append(
            ApiRequest(str(serialized[0]), url.path + (f"?{url.query}" if url.query else ""))
        )
        return serialized


def audited_client() -> AuditedApiClient:
    """KUBECONFIG (or ~/.kube/config), else the in-cluster service account."""
    configuration = client.Configuration()
    try:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    return AuditedApiClient(configuration)


class NotFoundError(LookupError):
    """The pod does not exist (one line for the CLI)."""


def _json(response: Any) -> Any:
    return json.loads(response.data or b"null")


class ClusterReader:
    """The reads ``oomlab explain`` makes, each a GET (or the exec connect)."""

    def __init__(self, api: AuditedApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            response = self.core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFoundError(f"pod {namespace}/{name} not found") from None
            raise
        found: dict[str, Any] = _json(response)
        return found

    def node(self, name: str) -> dict[str, Any] | None:
        try:
            response = self.core.read_node(
                name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise
        found: dict[str, Any] = _json(response)
        return found

    def nodes(self) -> list[dict[str, Any]]:
        response = self.core.list_node(_preload_content=False, _request_timeout=REQUEST_TIMEOUT_S)
        return list((_json(response) or {}).get("items") or [])

    def priority_classes(self) -> dict[str, int]:
        """Every PriorityClass's value; {} when they may not be listed."""
        try:
            response = client.SchedulingV1Api(self.api).list_priority_class(
                _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status in (403, 404):
                return {}
            raise
        items = (_json(response) or {}).get("items") or []
        return {
            str(item["metadata"]["name"]): int(item["value"])
            for item in items
            if isinstance(item.get("value"), int)
        }

    def kubelet_config(self, node: str) -> tuple[dict[str, Any] | None, str | None]:
        """The kubelet's running configuration (``/configz`` through the API server's node proxy),
        or None and why not (RBAC: ``nodes/proxy``; or the kubelet does not answer)."""
        try:
            response = self.core.connect_get_node_proxy_with_path(
                node, "configz", _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S
            )
        except ApiException as exc:
            if exc.status == 403:
                return None, "reading the kubelet's configz needs get on nodes/proxy (RBAC)"
            return None, f"the kubelet's configz did not answer ({exc.status})"
        document = _json(response) or {}
        return dict(document.get("kubeletconfig") or {}), None

    def cat(self, namespace: str, pod: str, container: str, path: str) -> ExecResult:
        """``cat PATH`` in the container through the exec API (stdout, stderr, exit status)."""
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import ERROR_CHANNEL

        session = stream(
            self.core.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            container=container,
            command=["cat", path],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
            _preload_content=False,
            _request_timeout=EXEC_TIMEOUT_S,
        )
        try:
            session.run_forever(timeout=EXEC_TIMEOUT_S)
            stdout = session.read_stdout() if session.peek_stdout() else ""
            stderr = session.read_stderr() if session.peek_stderr() else ""
            status = session.read_channel(ERROR_CHANNEL)
        finally:
            session.close()
        return exec_result(stdout, stderr, status)


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int | None
    """None when the command did not start (no such binary, container not running)."""
    failure: str = ""
    """The runtime's sentence when the command did not start."""


def exec_result(stdout: str, stderr: str, status_text: str) -> ExecResult:
    """Read the exec's status channel: Success, a non-zero exit, or a command that never ran."""
    status = yaml.safe_load(status_text or "") or {}
    if not isinstance(status, Mapping) or status.get("status") == "Success":
        return ExecResult(stdout, stderr, 0)
    if status.get("reason") == "NonZeroExitCode":
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                return ExecResult(stdout, stderr, int(cause.get("message")))
    return ExecResult(stdout, stderr, None, str(status.get("message") or status))


@dataclass(frozen=True)
class CgroupReading:
    """The container's own cgroup files as it reads them, or why they could not be read."""

    files: dict[str, str] = field(default_factory=dict)
    unreadable: str | None = None


def no_reader(failure: str) -> bool:
    """The exec failed because the image has no ``cat`` (or no such binary at all)."""
    text = failure.lower()
    return "executable file not found" in text or "no such file or directory" in text


def read_cgroup_files(
    reader: ClusterReader, namespace: str, pod: str, container: str
) -> CgroupReading:
    """memory.max, memory.swap.max, memory.high (cgroup v2), else memory.limit_in_bytes and
    memory.memsw.limit_in_bytes (v1), one ``cat`` each."""
    files: dict[str, str] = {}
    for names, prefix in ((V2_FILES, CGROUP_ROOT), (V1_FILES, f"{CGROUP_ROOT}/memory")):
        for index, name in enumerate(names):
            result = reader.cat(namespace, pod, container, f"{prefix}/{name}")
            if result.exit_code is None:
                if no_reader(result.failure):
                    return CgroupReading(
                        unreadable=f"the image has no cat to read its cgroup files with "
                        f"({result.failure.strip()}); read them on the node instead"
                    )
                return CgroupReading(unreadable=f"exec failed: {result.failure.strip()}")
            if result.exit_code == 0:
                files[name] = result.stdout.strip()
            elif index == 0:
                break  # not this cgroup version
        if files:
            return CgroupReading(files)
    return CgroupReading(unreadable="no memory cgroup files are visible in the container")


def swap_behavior_from_config(kubelet_config: Mapping[str, Any] | None) -> SwapBehavior | None:
    """``memorySwap.swapBehavior`` from a kubelet's configz (empty means NoSwap)."""
    if kubelet_config is None:
        return None
    raw = (kubelet_config.get("memorySwap") or {}).get("swapBehavior") or "NoSwap"
    try:
        return SwapBehavior(raw)
    except ValueError:
        return None


def memory_qos_on(kubelet_config: Mapping[str, Any] | None) -> bool:
    """Whether the kubelet's Memory QoS could write memory.high (feature gate on)."""
    gates = (kubelet_config or {}).get("featureGates") or {}
    return bool(gates.get("MemoryQoS"))
