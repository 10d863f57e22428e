"""Runners: turn an experiment into an observed result on one runtime, and say what that
runtime's host really is (:class:`Runner`: ``run()`` and ``info()``)."""

from __future__ import annotations

import os
import re
from typing import Any

from oomlab.results import RuntimeInfo
from oomlab.runners.base import (
    RUN_LABEL,
    ContainerRun,
    ContainerRunner,
    EngineError,
    EngineUnavailable,
    Runner,
)
from oomlab.runners.docker import DockerRunner, docker_client
from oomlab.runners.podman import PodmanRunner
from oomlab.workload import DEFAULT_IMAGE

ENGINE_ENV_PREFIX = "OOMLAB_ENGINE_"
"""``docker@vm`` finds its engine's address in ``OOMLAB_ENGINE_VM`` (a DOCKER_HOST value)."""


def engine_address(spec: str) -> tuple[str, str | None]:
    """``docker`` -> (docker, None); ``docker@unix:///run/vm.sock`` -> (docker, that URL);
    ``docker@vm`` -> (docker, $OOMLAB_ENGINE_VM). Raises EngineError for what cannot be reached."""
    engine, _, where = spec.partition("@")
    if engine not in ("docker", "podman"):
        raise EngineError(f"unknown engine {engine!r} in {spec!r}: use docker or podman")
    if not where:
        return engine, None
    if "://" in where:
        return engine, where
    variable = ENGINE_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", where).upper()
    address = os.environ.get(variable)
    if not address:
        raise EngineUnavailable(
            f"engine {spec!r}: set {variable} to its address (a DOCKER_HOST value such as "
            "unix:///run/oomlab-vm/docker.sock or tcp://127.0.0.1:2375)"
        )
    return engine, address


def container_runner(
    engine: str, client: Any | None = None, *, probe_image: str = DEFAULT_IMAGE
) -> ContainerRunner:
    """The runner for an engine spec (``docker``, ``podman``, ``docker@ADDRESS``,
    ``docker@NAME``); ``client`` reuses a Docker connection; ``info()`` runs its probe container
    from ``probe_image``."""
    kind, address = engine_address(engine)
    if kind == "docker":
        return DockerRunner(client or (docker_client(address) if address else None), probe_image)
    if address is None:
        return PodmanRunner(probe_image)
    raise EngineUnavailable(f"engine {engine!r}: a remote podman is not supported yet")


__all__ = [
    "RUN_LABEL",
    "ContainerRun",
    "ContainerRunner",
    "DockerRunner",
    "EngineError",
    "EngineUnavailable",
    "PodmanRunner",
    "Runner",
    "RuntimeInfo",
    "container_runner",
    "docker_client",
    "engine_address",
]
