"""Runners: turn an experiment into an observed result on one runtime, and say what that
runtime's host really is (:class:`Runner`: ``run()`` and ``info()``)."""

from __future__ import annotations

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


def container_runner(engine: str, client: Any | None = None) -> ContainerRunner:
    """The runner for ``engine`` (docker or podman); ``client`` reuses a Docker connection."""
    if engine == "docker":
        return DockerRunner(client)
    if engine == "podman":
        return PodmanRunner()
    raise EngineError(f"unknown engine {engine!r}: use docker or podman")


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
]
