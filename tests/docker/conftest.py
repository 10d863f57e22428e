"""The docker tier needs a real engine with the workload image (``make setup`` provides both).

Without one these tests skip, unless OOMLAB_REQUIRE_ENGINE=1 (set by ``make test-docker`` and CI),
where a missing engine is a failure: a green run must mean the tests ran.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from oomlab.rules.workload import DEFAULT_IMAGE
from oomlab.runners import RUN_LABEL, DockerRunner, EngineError, docker_client


def _missing(reason: str) -> None:
    if os.environ.get("OOMLAB_REQUIRE_ENGINE") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def client() -> Any:
    try:
        client = docker_client()
    except EngineError as exc:
        _missing(str(exc))
    try:
        client.images.get(DEFAULT_IMAGE)
    except Exception:
        _missing(f"{DEFAULT_IMAGE} is missing: run hack/images.sh")
    return client


@pytest.fixture(scope="session")
def docker_runner(client: Any) -> DockerRunner:
    """One runner for the session: its host probe runs once."""
    return DockerRunner(client)


@pytest.fixture(scope="session")
def podman_ready() -> None:
    if shutil.which("podman") is None:
        _missing("podman is not installed (hack/docker-up.sh installs it)")


@pytest.fixture(autouse=True)
def no_leftover_containers(request: pytest.FixtureRequest) -> Any:
    """Every test must leave no container of ours behind, whatever happened in it."""
    yield
    if "client" in request.fixturenames:
        engine = request.getfixturevalue("client")
        left = engine.containers.list(all=True, filters={"label": RUN_LABEL})
        assert not left, f"containers left behind: {[c.name for c in left]}"
