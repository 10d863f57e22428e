"""Every error family the CLI can meet is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import docker.errors
import pytest
import typer
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner
from urllib3.exceptions import MaxRetryError, NewConnectionError

from oomlab import kube
from oomlab.cli import container_runs
from oomlab.cli.errors import App
from oomlab.cli.main import app
from oomlab.experiment import InvalidSpec
from oomlab.runners import EngineUnavailable

runner = CliRunner()


def _one_error_line(result: Any) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return str(lines[0])


def test_kubeconfig_missing_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    line = _one_error_line(runner.invoke(app, ["parity", "x"]))
    assert "KUBECONFIG=/nonexistent" in line


def test_kubeconfig_missing_in_a_real_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oomlab.cli.main", "parity", "x"],
        capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "KUBECONFIG": "/nonexistent"},
    )  # fmt: skip
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def _raises(exc: BaseException) -> Callable[..., Any]:
    def raiser(*_: object, **__: object) -> Any:
        raise exc

    return raiser


def _api(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.body = f'{{"kind": "Status", "message": "{message}"}}'
    return exc


def _unreachable() -> MaxRetryError:
    cause = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return MaxRetryError(None, "/apis", cause)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "exc", "args", "needle"),
    [
        ("get_experiment", _api(403, "forbidden: user x"), ["parity", "x"], "said 403"),
        ("create_experiment", _api(409, "oomexperiments x already exists"), ["kube", "run", "x"],
         "conflict"),
        ("list_experiments", _unreachable(), ["kube", "matrix"], "no cluster answers"),
        ("create_experiment", _unreachable(), ["kube", "run", "x"], "no cluster answers"),
        ("get_experiment", kube.StatusConflict("kept changing"), ["parity", "x"], "kept changing"),
    ],
)  # fmt: skip
def test_cluster_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, target: str, exc: Exception, args: list[str], needle: str
) -> None:
    for name in ("get_experiment", "create_experiment", "list_experiments"):
        monkeypatch.setattr(kube, name, _raises(exc) if name == target else lambda *a, **k: {})
    assert needle in _one_error_line(runner.invoke(app, args))


def test_invalid_spec_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"spec": {"workload": {"size": "1000m"}, "resources": {"limits": {"memory": "1Gi"}}}}
    monkeypatch.setattr(kube, "get_experiment", lambda *_: body)
    assert "spec.workload" in _one_error_line(runner.invoke(app, ["parity", "x"]))


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (docker.errors.APIError("500 Server Error: engine broke"), "engine broke"),
        (docker.errors.DockerException("Error while fetching server API version"), "API version"),
        (EngineUnavailable("no Docker engine answers"), "no Docker engine answers"),
        (InvalidSpec("spec.docker", "bad flags"), "spec.docker: bad flags"),
        (OSError(28, "No space left on device"), "No space left"),
        (RuntimeError("a bug\nacross lines"), "unexpected RuntimeError: a bug across lines"),
    ],
)
def test_engine_and_other_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, exc: Exception, needle: str
) -> None:
    monkeypatch.setattr(container_runs, "container_runner", _raises(exc))
    assert needle in _one_error_line(runner.invoke(app, ["demo"]))


def test_ctrl_c_is_130(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container_runs, "container_runner", _raises(KeyboardInterrupt()))
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 130
    assert "Traceback" not in result.output


def test_every_command_is_guarded() -> None:
    """A command added later gets the same rule without asking for it."""
    extra = App()

    @extra.command()
    def boom() -> None:
        raise ApiException(status=500, reason="Internal Server Error")

    @extra.command()
    def other() -> None:
        raise typer.Exit(0)

    assert "said 500" in _one_error_line(runner.invoke(extra, ["boom"]))
