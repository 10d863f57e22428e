"""Keep a tier hermetic: no cluster or container engine reachable from the environment.

The unit and net tiers run on machines where KUBECONFIG, DOCKER_HOST or ~/.kube/config may point
at a live cluster or engine; a test that forgot its fake would then create objects there. Their
conftests call :func:`isolate` around every test: it takes each such way out of the environment
and forgets every cached client, so that test fails the same way everywhere instead. A test that
needs a cluster or an engine gives itself an explicit fake.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from oomlab import kube

REACHING_OUT = frozenset(
    {
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_CERT_PATH",
        "DOCKER_TLS_VERIFY",
        "CONTAINER_HOST",
        "CONTAINER_CONNECTION",
        "CONTAINER_SSHKEY",
        "OOMLAB_ALLOW_FOREIGN_CLUSTER",
    }
)
"""Variables that choose a cluster or an engine, or let the test guard use a foreign cluster."""

REACHING_OUT_PREFIXES = ("OOMLAB_ENGINE_",)
"""``docker@NAME`` and ``podman@NAME`` read their addresses from ``OOMLAB_ENGINE_*``."""

NO_DOCKER_ENGINE = "unix:///nonexistent/oomlab-hermetic/docker.sock"
"""Without DOCKER_HOST the Docker SDK would use the local engine's socket."""


def reaching_out(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that :func:`isolate` takes out of the environment."""
    return [n for n in names if n in REACHING_OUT or n.startswith(REACHING_OUT_PREFIXES)]


def forget_clients() -> None:
    """Every client cached in this process: oomlab's Kubernetes client (the runners cache no
    Docker client)."""
    kube.reset_client()


def isolate(monkeypatch: pytest.MonkeyPatch, base: Path) -> None:
    """No cluster or engine in the environment, and no client cached from an earlier test.

    KUBECONFIG names a file under ``base`` that does not exist, so ~/.kube/config is never read
    either, and DOCKER_HOST a socket that does not exist, so the local engine's default socket is
    never tried. Tier switches such as OOMLAB_REQUIRE_NETNS stay."""
    for name in reaching_out(list(os.environ)):
        monkeypatch.delenv(name)
    monkeypatch.setenv("KUBECONFIG", str(base / "hermetic-no-cluster" / "kubeconfig"))
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER_ENGINE)
    # tests/lab.py's connect() sets the client library's default configuration: give it back.
    monkeypatch.setattr(client.Configuration, "_default", client.Configuration._default)
    forget_clients()


@pytest.fixture(autouse=True)
def hermetic_tier(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Autouse in every tier whose conftest imports it: :func:`isolate` around each test."""
    isolate(monkeypatch, tmp_path_factory.getbasetemp())
    yield
    forget_clients()
