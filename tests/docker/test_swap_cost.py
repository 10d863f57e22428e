"""What surviving by swap costs, measured: the seed at 500m/1g against its unconstrained twin,
one pass and with re-access passes; and `oomlab report` writing its directory for real."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from oomlab.cli.container_runs import execute
from oomlab.cli.report_model import SEED, unconstrained_twin
from oomlab.rules.results import CgroupVersion, Outcome
from oomlab.rules.swapcost import CostVerdict, swap_cost
from oomlab.runners import ContainerRun, DockerRunner


def test_reaccess_costs_more_than_one_pass_and_swaps_in(client: Any) -> None:
    one_pass = ContainerRun(SEED, "500m", "1g")
    again = ContainerRun(replace(SEED, reaccess=3), "500m", "1g")
    rows = execute([unconstrained_twin(one_pass), one_pass, unconstrained_twin(again), again])
    results = [row.result for row in rows]
    assert all(r is not None and r.outcome == Outcome.COMPLETED for r in results), [
        (row.run.flags(), row.result.reason if row.result else row.error) for row in rows
    ]
    twin1, run1, twin3, run3 = (r for r in results if r is not None)
    cost1, cost3 = swap_cost(run1, twin1), swap_cost(run3, twin3)
    assert cost1.ratio is not None and cost3.ratio is not None
    assert cost3.ratio > cost1.ratio, (cost1.sentence, cost3.sentence)
    assert cost3.verdict == CostVerdict.COSTLY, cost3.sentence
    assert cost3.swap is not None and cost3.swap.swapin_bytes, cost3.sentence
    assert run3.progress.reaccess_passes == 3
    if run1.host.cgroup_version == CgroupVersion.V1:
        # the one-pass run ended with about half its data in swap; the twin with none
        assert cost1.swap is not None and (cost1.swap.swap_bytes_at_end or 0) > 400 * 2**20
        assert twin1.progress.swap is not None and twin1.progress.swap.swap_bytes_at_end == 0


def test_report_writes_its_directory(docker_runner: DockerRunner, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "oomlab.cli.main", "report", "--engine", "docker",
         "--runtime", "runc,crun", "--out", str(out), "--readme-table"],
        capture_output=True, text=True, check=True, timeout=900,
    )  # fmt: skip
    assert proc.stdout.startswith("| runtime | host |")
    assert "longest step:" in proc.stderr and "largest part:" in proc.stderr
    data = json.loads((out / "report.json").read_text())
    runc = [c for c in data["cells"] if c["column"] == "docker/runc"]
    assert all(c["row"]["agrees"] for c in runc), [c["row"]["observed"]["reason"] for c in runc]
    costs = {c["scenario"]: c["swap_cost"]["ratio"] for c in runc if c["swap_cost"]}
    assert costs["reaccess"] > costs["swap"]
    crun = [c for c in data["cells"] if c["column"] == "docker/crun"]
    if docker_runner.info().cgroup_version == CgroupVersion.V1:
        assert {c["row"]["observed"]["outcome"] for c in crun} == {"Refused"}
    for name in ("report.md", "readme-table.md", "runtimes.png", "swap-cost.png"):
        assert (out / name).stat().st_size > 0
