"""The Kubernetes API client, cached per the configuration it was loaded from.

A test that changes KUBECONFIG, or a long-lived process whose kubeconfig is rewritten, gets a
fresh client instead of the one cached for another cluster."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.incluster_config import SERVICE_TOKEN_FILENAME

_lock = threading.Lock()
_api_client: client.ApiClient | None = None
_api_client_source: tuple[str, ...] | None = None


def kubeconfig_location() -> str:
    """``$KUBECONFIG`` as it is now (one path, or several joined by ``:``), else
    ``~/.kube/config``. The client library reads KUBECONFIG once, when it is imported, so a later
    change (a test's, or a long-lived process's) would go unseen without this."""
    return os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def _in_cluster() -> tuple[str, str] | None:
    """The service account's API server (host, port) when running in a pod, else None."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    if host and port and os.path.isfile(SERVICE_TOKEN_FILENAME):
        return host, port
    return None


def _digest(path: str) -> str:
    """The file's contents as a hash: a rewrite within one mtime tick still counts."""
    try:
        return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def client_source() -> tuple[str, ...]:
    """What a client loaded now would be configured from: the in-cluster service account, or the
    kubeconfig location and each file's contents. A different answer means a different client."""
    in_cluster = _in_cluster()
    if in_cluster:
        return ("in-cluster", *in_cluster)
    location = kubeconfig_location()
    return ("kubeconfig", location, *(_digest(p) for p in location.split(os.pathsep) if p))


def _new_client(source: tuple[str, ...]) -> client.ApiClient:
    configuration = client.Configuration()
    if source[0] == "in-cluster":
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=source[1], client_configuration=configuration
        )
    # Handlers run in threads; the default pool of 4 connections would be the bottleneck.
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


def load_client_config() -> client.ApiClient:
    """The API client for the configuration in force now: the in-cluster service account if
    there is one, else KUBECONFIG / ~/.kube/config. Cached per :func:`client_source`, so a
    changed KUBECONFIG, or a rewritten kubeconfig file, gives a fresh client."""
    global _api_client, _api_client_source
    source = client_source()
    with _lock:
        if _api_client is None or source != _api_client_source:
            _api_client = _new_client(source)
            _api_client_source = source
        return _api_client


def reset_client() -> None:
    """Forget the client (tests)."""
    global _api_client, _api_client_source
    with _lock:
        _api_client = None
        _api_client_source = None
