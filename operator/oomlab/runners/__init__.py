"""Runners: turn an experiment into an observed result on one runtime, and say what that
runtime's host really is (:class:`Runner`: ``run()`` and ``info()``)."""

from __future__ import annotations

import os
import re
from typing import Any

from oomlab.rules.results import RuntimeInfo
from oomlab.rules.workload import DEFAULT_IMAGE
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

ENGINE_ENV_PREFIX = "OOMLAB_ENGINE_"
"""``docker@vm`` finds its engine's address in ``OOMLAB_ENGINE_VM`` (a DOCKER_HOST value),
``podman@vm`` in ``OOMLAB_ENGINE_PODMAN_VM`` (a ``podman --url`` value)."""

ADDRESS_EXAMPLES = {
    "docker": "a DOCKER_HOST value such as unix:///run/oomlab-vm/docker.sock or "
    "tcp://127.0.0.1:2375",
    "podman": "a podman --url value such as tcp://127.0.0.1:23751 or "
    "unix:///run/podman/podman.sock",
}


def engine_variable(engine: str, name: str) -> str:
    """Where ``ENGINE@NAME`` finds its address: ``OOMLAB_ENGINE_<NAME>`` for Docker (the first
    engine named this way), ``OOMLAB_ENGINE_<ENGINE>_<NAME>`` for any other."""
    suffix = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    if engine == "docker":
        return ENGINE_ENV_PREFIX + suffix
    return f"{ENGINE_ENV_PREFIX}{engine.upper()}_{suffix}"


def engine_address(spec: str) -> tuple[str, str | None]:
    """``docker`` -> (docker, None); ``docker@unix:///run/vm.sock`` -> (docker, that URL);
    ``docker@vm`` -> (docker, $OOMLAB_ENGINE_VM); ``podman@vm`` -> (podman,
    $OOMLAB_ENGINE_PODMAN_VM). Raises EngineError for what cannot be reached."""
    engine, _, where = spec.partition("@")
    if engine not in ADDRESS_EXAMPLES:
        raise EngineError(f"unknown engine {engine!r} in {spec!r}: use docker or podman")
    if not where:
        return engine, None
    if "://" in where:
        return engine, where
    variable = engine_variable(engine, where)
    address = os.environ.get(variable)
    if not address:
        raise EngineUnavailable(
            f"engine {spec!r}: set {variable} to its address ({ADDRESS_EXAMPLES[engine]})"
        )
    return engine, address


def container_runner(
    engine: str, client: Any | None = None, *, probe_image: str = DEFAULT_IMAGE
) -> ContainerRunner:
    """The runner for an engine spec (``docker``, ``podman``, ``ENGINE@ADDRESS``,
    ``ENGINE@NAME``); ``client`` reuses a Docker connection; ``info()`` runs its probe container
    from ``probe_image``."""
    kind, address = engine_address(engine)
    if kind == "docker":
        return DockerRunner(client or (docker_client(address) if address else None), probe_image)
    return PodmanRunner(probe_image, url=address)


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
    "engine_variable",
]
