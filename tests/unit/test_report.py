"""`oomlab report` from real-shaped results: cells, findings, the README table, the files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from oomlab.cli import report as rep
from oomlab.cli import report_findings as judged
from oomlab.cli import report_model as model
from oomlab.cli import report_render as render
from oomlab.cli.container_runs import Row, docker_prediction
from oomlab.rules.results import (
    CgroupVersion,
    Outcome,
    Progress,
    RunResult,
    RuntimeInfo,
    SwapActivity,
)
from oomlab.runners import ContainerRun, EngineError, EngineUnavailable, engine_address

MiB = 2**20
HOST = RuntimeInfo(CgroupVersion.V1, 2 * 1024 * MiB, 24 * 1024 * MiB, engine="docker",
                   engine_version="20.10.24", swap_limit_supported=True,
                   transparent_hugepages="madvise", local=True)  # fmt: skip
SWAPPED = SwapActivity(100 * MiB, 600 * MiB, "system", 5000, 512 * MiB)


def _row(run: ContainerRun, outcome: Outcome, seconds: float = 1.0, exit_code: int = 0) -> Row:
    _, prediction = docker_prediction(run, HOST)
    progress = Progress(allocate_s=seconds, swap=SWAPPED)
    reason = f"observed {outcome.value}"
    if outcome == Outcome.OOM_KILLED:
        reason = "the kernel OOM-killed it (exit 137; Docker reported State.OOMKilled)"
    result = RunResult("docker", outcome, reason, exit_code, host=HOST,
                       runtime=run.runtime, progress=progress)  # fmt: skip
    return Row(run, prediction, result)


def _report(observe: dict[str, Outcome], refused_runtime: str | None = "crun") -> rep.Report:
    report = rep.Report(started="now", wall_s=12.0, hosts={"docker": HOST})
    cols = model.columns(["docker"], ["runc", *([refused_runtime] if refused_runtime else [])])
    for column in cols:
        for scenario in model.SCENARIOS:
            run = ContainerRun(scenario.workload, scenario.memory, scenario.memory_swap,
                               column.runtime, column.engine)  # fmt: skip
            if column.runtime == refused_runtime:
                outcome = Outcome.REFUSED
            else:
                outcome = observe[scenario.key]
            seconds = 3.0 if scenario.workload.reaccess else 2.0
            row = _row(run, outcome, seconds, 137 if outcome == Outcome.OOM_KILLED else 0)
            twin = None
            if scenario.cost:
                twin = _row(model.unconstrained_twin(run), Outcome.COMPLETED, 1.0)
            report.cells.append(model.Cell(column, scenario, row, twin))
            report.steps.append(model.Step(f"{column.label}: {scenario.key}", seconds))
    report.steps.append(model.Step("docker: info() probe", 0.5))
    return report


AS_PREDICTED = {
    "no-swap": Outcome.OOM_KILLED,
    "swap": Outcome.COMPLETED,
    "swap-unset": Outcome.OOM_KILLED,
    "streaming": Outcome.COMPLETED,
    "reaccess": Outcome.COMPLETED,
}


def test_the_twin_has_memory_enough_and_no_swap() -> None:
    run = ContainerRun(model.SEED, "500m", "1g")
    twin = model.unconstrained_twin(run)
    assert (twin.memory, twin.memory_swap) == ("1268m", "1268m")
    assert twin.workload == run.workload


def test_every_cell_as_predicted_leaves_only_the_refusal_as_a_finding() -> None:
    report = _report(AS_PREDICTED)
    found = judged.findings(report)
    assert len(found) == 1
    assert "**docker/crun** refused every container" in found[0]


def test_a_disagreement_is_a_finding_with_both_reasons() -> None:
    report = _report({**AS_PREDICTED, "swap": Outcome.OOM_KILLED}, refused_runtime=None)
    (finding,) = judged.findings(report)
    assert finding.startswith("**docker/runc**, swap allowed (500m/1g): predicted Completed")
    assert "The rules said:" in finding and "What happened: the kernel OOM-killed it" in finding
    assert "✗ (predicted Completed)" in render.readme_table(report)


def test_readme_table_has_a_line_per_runtime_with_costs() -> None:
    table = render.readme_table(_report(AS_PREDICTED))
    lines = table.splitlines()
    assert lines[0].startswith("| runtime | host | no swap (500m/500m) |")
    assert lines[0].endswith(
        "| swap cost: one pass | swap cost: 3 re-access passes | OOM kill reported |"
    )
    runc = next(line for line in lines if line.startswith("| docker 20.10.24 + runc"))
    assert "OOMKilled, 137 ✓" in runc and "Completed ✓" in runc
    assert "2.0x, 100 MiB swapped in" in runc and "3.0x" in runc
    assert runc.endswith("| Docker reported State.OOMKilled |")
    crun = next(line for line in lines if line.startswith("| docker 20.10.24 + crun"))
    assert crun.count("refused") == 5


def test_a_twin_that_did_not_complete_is_a_finding() -> None:
    report = _report(AS_PREDICTED, refused_runtime=None)
    cell = report.cells[1]
    assert cell.twin is not None
    killed = _row(cell.twin.run, Outcome.OOM_KILLED, exit_code=137)
    report.cells[1] = model.Cell(cell.column, cell.scenario, cell.row, killed)
    (finding,) = judged.findings(report)
    assert "the unconstrained twin (--memory=1268m --memory-swap=1268m) did not complete" in finding
    assert report.cells[1].cost is not None
    assert report.cells[1].cost.verdict.value == "no baseline"


def test_a_run_without_its_working_time_is_a_finding() -> None:
    report = _report(AS_PREDICTED, refused_runtime=None)
    cell = report.cells[1]
    assert cell.row.result is not None
    silent = replace(cell.row.result, progress=Progress())  # an older memhog: no allocate_s
    report.cells[1] = model.Cell(cell.column, cell.scenario, replace(cell.row, result=silent),
                               cell.twin)  # fmt: skip
    (finding,) = judged.findings(report)
    assert finding.endswith("no slowdown to report: a run did not report its working time.")


def test_reaccess_cheaper_than_one_pass_is_a_finding() -> None:
    report = _report(AS_PREDICTED, refused_runtime=None)
    for index, cell in enumerate(report.cells):
        if cell.scenario.key == "reaccess":
            slower_twin = _row(cell.twin.run, Outcome.COMPLETED, 10.0) if cell.twin else None
            report.cells[index] = model.Cell(cell.column, cell.scenario, cell.row, slower_twin)
    assert judged.cost_pairs(report) == {"docker/runc": (2.0, 0.3)}
    (finding,) = judged.findings(report)
    assert "re-reading the data cost no more than one pass" in finding


def test_timing_names_the_longest_step_and_largest_part() -> None:
    report = _report(AS_PREDICTED)
    assert judged.longest(report.steps) == model.Step("docker/runc: reaccess", 3.0)
    parts = judged.column_seconds(report)
    assert list(parts)[:2] == ["docker/runc", "docker/crun"]
    assert parts["docker/runc"] == 11.0
    text = render.render_markdown(report)
    assert "Longest step: docker/runc: reaccess (3.0 s); largest part: docker/runc (11.0 s)" in text


def test_write_makes_a_self_contained_directory(tmp_path: Path) -> None:
    report = _report(AS_PREDICTED)
    written = render.write(report, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["readme-table.md", "report.json", "report.md", "runtimes.png",
                     "swap-cost.png"]  # fmt: skip
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "![swap-cost.png](swap-cost.png)" in markdown
    assert "## Findings" in markdown and "## Swap cost" in markdown
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(data["cells"]) == 10
    assert data["cells"][1]["swap_cost"]["ratio"] == 2.0
    assert any(step["name"] == "charts" for step in data["steps"])


def test_engine_specs() -> None:
    assert engine_address("docker") == ("docker", None)
    assert engine_address("docker@unix:///run/vm.sock") == ("docker", "unix:///run/vm.sock")
    with pytest.raises(EngineError, match="unknown engine"):
        engine_address("containerd")


def test_named_engine_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OOMLAB_ENGINE_CGROUP_V2_VM", "tcp://127.0.0.1:2375")
    assert engine_address("docker@cgroup-v2-vm") == ("docker", "tcp://127.0.0.1:2375")
    monkeypatch.delenv("OOMLAB_ENGINE_CGROUP_V2_VM")
    with pytest.raises(EngineUnavailable, match="set OOMLAB_ENGINE_CGROUP_V2_VM"):
        engine_address("docker@cgroup-v2-vm")


def test_an_unreachable_engine_is_a_column_of_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OOMLAB_ENGINE_VM", raising=False)
    report = rep.measure(model.columns(["docker@vm"], ["runc"]))
    assert len(report.cells) == len(model.SCENARIOS)
    assert all(cell.row.result is None for cell in report.cells)
    assert "set OOMLAB_ENGINE_VM" in report.unreachable["docker@vm"]
    found = judged.findings(report)
    assert len(found) == 1 and found[0].startswith("**docker@vm** could not be reached")
    assert "| unreachable (see findings) |" in render.readme_table(report)
