"""Every matrix cell that is not Borderline matches its prediction; refusing runtimes are rows."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from typing import Any

import pytest

from oomlab.cli.container_runs import Row, execute
from oomlab.rules.results import CgroupVersion, Outcome, Predicted
from oomlab.rules.workload import Mode, WorkloadSpec
from oomlab.runners import ContainerRun, DockerRunner

MiB = 2**20
WORKLOADS = [
    WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB),
    WorkloadSpec(Mode.STREAMING, 1000 * MiB, 50 * MiB, window=2),
    WorkloadSpec(Mode.LEAK, 600 * MiB, step_bytes=100 * MiB, interval_s=0.05),
    WorkloadSpec(Mode.SPIKE, 700 * MiB, base_bytes=100 * MiB),
]
SWAPS = ["500m", "1g", None, "-1", "1000m"]


def _check(rows: list[Row]) -> None:
    decided = [r for r in rows if r.prediction and r.prediction.outcome != Predicted.BORDERLINE]
    assert decided, "every cell was borderline: the matrix proves nothing"
    for row in decided:
        assert row.result is not None, row.error
        assert row.agrees, (
            f"{row.run.flags()} {row.run.workload.describe()}: predicted "
            f"{row.prediction.outcome if row.prediction else None}, observed "
            f"{row.result.outcome} ({row.result.reason})"
        )


def test_docker_runc_matrix(client: Any) -> None:
    runs = [
        ContainerRun(workload, "500m", swap)
        for workload, swap in itertools.product(WORKLOADS, SWAPS)
    ]
    rows = execute(runs)
    _check(rows)
    outcomes = {r.result.outcome for r in rows if r.result}
    assert outcomes == {Outcome.OOM_KILLED, Outcome.COMPLETED}


def test_podman_runc_matches_docker(client: Any, podman_ready: None) -> None:
    runs = [ContainerRun(WORKLOADS[0], "500m", swap, engine="podman") for swap in ("500m", "1g")]
    rows = execute(runs)
    _check(rows)
    assert [r.result.exit_code for r in rows if r.result] == [137, 0]
    killed = rows[0].result
    assert killed is not None
    assert killed.oom_killed is True
    if killed.host.engine_version and killed.host.engine_version.startswith("4.3."):
        # podman 4.3 says State.OOMKilled=false; only its conmon's marker tells the OOM kill
        assert "conmon left an OOM marker" in killed.reason, killed.reason
    else:
        assert "podman reported State.OOMKilled" in killed.reason, killed.reason


def test_crun_refusal_is_a_row_with_its_reason(docker_runner: DockerRunner) -> None:
    if docker_runner.info().cgroup_version != CgroupVersion.V1:
        pytest.skip("allowed skip: crun refuses only hybrid (cgroup v1) hosts")
    rows = execute([ContainerRun(WORKLOADS[1], "500m", "500m", runtime="crun")])
    assert len(rows) == 1
    row = rows[0]
    assert row.result is not None
    assert row.result.outcome == Outcome.REFUSED
    assert "cgroup" in row.result.reason


def test_matrix_cli_json(docker_runner: DockerRunner) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oomlab.cli.main", "docker", "matrix", "--memory-swap", "500m,1g",
         "--runtime", "runc,crun", "--mode", "bulk", "--json"],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    cells = json.loads(proc.stdout)
    assert len(cells) == 4
    by_key = {(c["runtime"], c["memory_swap"]): c for c in cells}
    assert by_key[("runc", "500m")]["observed"]["outcome"] == "OOMKilled"
    assert by_key[("runc", "1g")]["observed"]["outcome"] == "Completed"
    crun = by_key[("crun", "500m")]["observed"]
    hybrid = docker_runner.info().cgroup_version == CgroupVersion.V1
    assert crun["outcome"] == ("Refused" if hybrid else "OOMKilled"), crun
