"""The charts are real PNGs drawn from real-shaped results (no engine needed)."""

from __future__ import annotations

from pathlib import Path

from oomlab.cli.container_runs import Row
from oomlab.cli.plot import plot_rows, plot_swap_cost, plot_timeline
from oomlab.rules.results import Outcome, Progress, RunResult
from oomlab.rules.workload import Mode, WorkloadSpec
from oomlab.runners import ContainerRun

MiB = 2**20
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(swap: str, outcome: Outcome) -> Row:
    timeline = tuple((i * 0.05, (10 + 50 * i) * MiB, 50 * i * MiB) for i in range(10))
    result = RunResult("docker", outcome, "why", 137 if outcome == Outcome.OOM_KILLED else 0,
                       progress=Progress(allocated_bytes=450 * MiB, timeline=timeline),
                       peak_usage_bytes=500 * MiB)  # fmt: skip
    run = ContainerRun(WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB), "500m", swap)
    return Row(run, None, result)


def test_plots_are_pngs(tmp_path: Path) -> None:
    rows = [_row("500m", Outcome.OOM_KILLED), _row("1g", Outcome.COMPLETED),
            _row("500m", Outcome.REFUSED)]  # fmt: skip
    for draw, name in ((plot_rows, "matrix.png"), (plot_timeline, "timeline.png")):
        path = tmp_path / name
        draw(rows, path)
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 10_000


def test_swap_cost_chart_is_a_png_even_with_missing_ratios(tmp_path: Path) -> None:
    path = tmp_path / "cost.png"
    plot_swap_cost([("docker/runc", 2.1, 7.5), ("docker/crun", None, None)], path)
    assert path.read_bytes().startswith(PNG_MAGIC)
