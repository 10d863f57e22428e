"""The CLI's promises that need no engine: bad input is one line, no traceback, non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oomlab.cli.main import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["docker", "run", "--memory", "500x"], "not a Docker size"),
        (["docker", "run", "--memory", "500m", "--memory-swap", "100m"], "at least --memory"),
        (["docker", "run", "--size", "500m"], "ambiguous"),
        (["docker", "matrix", "--mode", "explode"], "not one of"),
        (["predict", "--memory", "4m"], "6 MiB"),
    ],
)
def test_bad_flags_fail_before_any_engine(args: list[str], needle: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output


def test_real_process_prints_one_line_and_no_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oomlab.cli.main", "docker", "run", "--memory", "500x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "500x" in proc.stderr


def test_predict_needs_no_engine() -> None:
    result = runner.invoke(
        app, ["predict", "--memory", "500m", "--memory-swap", "500m", "--host-swap", "2Gi"]
    )
    assert result.exit_code == 0
    assert "OOMKilled" in result.output
    result = runner.invoke(
        app, ["predict", "--memory", "500m", "--memory-swap", "1g", "--host-swap", "2Gi"]
    )
    assert "Completed" in result.output


def test_predict_without_host_swap_asks_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from oomlab.cli import main as cli
    from oomlab.runners import EngineUnavailable

    def no_engine(engine: str) -> None:
        raise EngineUnavailable("no Docker engine answers")

    monkeypatch.setattr(cli, "container_runner", no_engine)
    result = runner.invoke(app, ["predict", "--memory", "500m"])
    assert result.exit_code == 2
    assert "--host-swap" in result.stderr


def test_host_without_an_engine_says_so_and_shows_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import platform

    from oomlab.cli import main as cli
    from oomlab.runners import EngineUnavailable

    def no_engine(engine: str, **_: object) -> None:
        raise EngineUnavailable("no Docker engine answers")

    monkeypatch.setattr(cli, "container_runner", no_engine)
    result = runner.invoke(app, ["host"])
    assert result.exit_code == 0
    assert "no Docker engine answers; this machine instead" in result.stderr
    assert f"kernel {platform.release()}" in result.stdout


def test_swap_cost_refuses_a_bad_pass_count_before_any_engine() -> None:
    result = runner.invoke(app, ["swap-cost", "--reaccess", "0,x"])
    assert result.exit_code == 2
    assert "--reaccess 'x' is not a whole number of passes" in result.stderr


def test_report_with_an_unreachable_engine_writes_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OOMLAB_ENGINE_VM", raising=False)
    # The cluster's columns too: explicitly none, never the one the environment points at.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    out = tmp_path / "r"
    result = runner.invoke(
        app, ["report", "--engine", "docker@vm", "--runtime", "runc", "--out", str(out),
              "--readme-table", "--no-charts"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("| runtime | host |")
    assert "unreachable (see findings)" in result.stdout
    written = (out / "report.md").read_text()
    assert "set OOMLAB_ENGINE_VM" in written
    assert "Not reachable: no cluster configuration" in written
    assert "largest part:" in result.stderr
