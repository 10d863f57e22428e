"""The charts are real PNGs drawn from real-shaped results (no engine needed)."""

from __future__ import annotations

from pathlib import Path

from oomlab.cli.container_runs import Row, row_bar, row_timeline
from oomlab.cli.plot import plot_bars, plot_swap_cost, plot_timeline
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
    timelines = [t for t in map(row_timeline, rows) if t is not None]
    drawings = (
        (lambda path: plot_bars([row_bar(row) for row in rows], path), "matrix.png"),
        (lambda path: plot_timeline(timelines, path), "timeline.png"),
    )
    for draw, name in drawings:
        path = tmp_path / name
        draw(path)
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 10_000


def test_swap_cost_chart_is_a_png_even_with_missing_ratios(tmp_path: Path) -> None:
    path = tmp_path / "cost.png"
    plot_swap_cost([("docker/runc", 2.1, 7.5), ("docker/crun", None, None)], path)
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_a_row_is_charted_as_plain_numbers_of_its_flags_on_its_host() -> None:
    swapping = _row("1g", Outcome.COMPLETED)
    timeline = row_timeline(swapping)
    bar = row_bar(swapping)
    assert timeline is not None
    assert (timeline.memory_bytes, timeline.usable_swap_bytes) == (500 * MiB, 524 * MiB)
    assert len(timeline.samples) == 10 and timeline.title.endswith(": Completed")
    assert (bar.memory_bytes, bar.swap_bytes, bar.peak_bytes) == (500 * MiB, 524 * MiB, 500 * MiB)
    refused = row_bar(_row("500m", Outcome.REFUSED))
    assert (refused.swap_bytes, refused.peak_bytes, refused.note) == (0, None, "why")
    assert row_timeline(Row(swapping.run, None, None, "engine down")) is None
