"""The seed experiment on a real engine, with real OOM kills by the kernel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from oomlab.rules.results import Outcome
from oomlab.rules.workload import Mode, WorkloadSpec
from oomlab.runners import RUN_LABEL, ContainerRun, DockerRunner

MiB = 2**20
SEED = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB)


def test_seed_without_swap_is_oom_killed(docker_runner: DockerRunner) -> None:
    result = docker_runner.run(ContainerRun(SEED, "500m", "500m"))
    assert result.outcome == Outcome.OOM_KILLED
    assert result.exit_code == 137
    assert result.oom_killed is True
    # how far it got: some progress, and never more than the limit
    assert result.progress.allocated_bytes is not None
    assert 0 < result.progress.allocated_bytes <= 500 * MiB
    assert result.peak_usage_bytes is not None
    assert result.peak_usage_bytes <= 500 * MiB + MiB


def test_seed_with_swap_completes(docker_runner: DockerRunner) -> None:
    result = docker_runner.run(ContainerRun(SEED, "500m", "1g"))
    assert result.outcome == Outcome.COMPLETED, result.reason
    assert result.exit_code == 0
    assert result.oom_killed is False
    assert result.progress.summary_status == "completed"
    assert result.progress.peak_allocated_bytes == 1000 * MiB
    # it really went past its memory limit into swap
    assert result.peak_usage_bytes is not None and result.peak_usage_bytes > 500 * MiB


def test_streaming_fix_completes_under_the_same_limit(docker_runner: DockerRunner) -> None:
    workload = WorkloadSpec(Mode.STREAMING, 1000 * MiB, 50 * MiB, window=2)
    result = docker_runner.run(ContainerRun(workload, "500m", "500m"))
    assert result.outcome == Outcome.COMPLETED, result.reason
    assert result.progress.processed_bytes == 1000 * MiB
    assert result.progress.peak_allocated_bytes is not None
    assert result.progress.peak_allocated_bytes <= 100 * MiB


def test_timeout_kills_and_removes_the_container(docker_runner: DockerRunner) -> None:
    workload = WorkloadSpec(Mode.BULK, 8 * MiB, 8 * MiB, hold_s=120)
    result = docker_runner.run(ContainerRun(workload, "64m", "64m", timeout_s=3))
    assert result.outcome == Outcome.TIMED_OUT
    assert result.duration_s is not None and result.duration_s < 60


def test_ctrl_c_removes_the_container(client: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "oomlab.cli.main", "docker", "run", "--memory", "64m",
         "--size", "8Mi", "--hold", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = client.containers.list(filters={"label": RUN_LABEL, "status": "running"})
        # the workload's container, not the runner's info() probe that comes first
        if any(not c.labels[RUN_LABEL].startswith("probe-") for c in running):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("the container never started")
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    assert not client.containers.list(all=True, filters={"label": RUN_LABEL})


def test_cli_docker_run_reports_the_seed(client: Any) -> None:
    oom = subprocess.run(
        [sys.executable, "-m", "oomlab.cli.main", "docker", "run", "--memory", "500m",
         "--memory-swap", "500m", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert '"outcome": "OOMKilled"' in oom.stdout
    assert '"exit_code": 137' in oom.stdout
    unset = subprocess.run(
        [sys.executable, "-m", "oomlab.cli.main", "docker", "run", "--memory", "500m", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (cell,) = json.loads(unset.stdout)
    assert cell["observed"]["outcome"] == "OOMKilled"
    assert "--memory-swap unset" in cell["explanation"]
    assert "2 x 500 MiB" in cell["explanation"]
