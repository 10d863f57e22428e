"""A chart of a matrix run: for each row, the memory and swap it was given, what it needed, and
what happened. One picture shows why 500m/1g survives and 500m/500m does not.

The charts take plain numbers (:class:`Bar`, :class:`Timeline`), whoever ran the experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oomlab.rules.results import Outcome
from oomlab.rules.units import MiB

COLOURS = {
    Outcome.OOM_KILLED: "#d62728",
    Outcome.COMPLETED: "#2ca02c",
    Outcome.FAILED: "#7f7f7f",
    Outcome.REFUSED: "#9467bd",
    Outcome.TIMED_OUT: "#ff7f0e",
}


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("plotting needs matplotlib: pip install 'oomlab[plot]'") from None
    return plt


@dataclass(frozen=True)
class Timeline:
    """One run's memory over time against its limits, in plain numbers (any runner)."""

    title: str
    samples: tuple[tuple[float, int | None, int | None], ...]
    """(seconds since start, resident bytes, bytes the workload allocated)."""
    outcome: Outcome
    memory_bytes: int | None
    usable_swap_bytes: int | None


def plot_timeline(timelines: Sequence[Timeline], path: Path) -> None:
    """Resident memory over time for each run, against its memory and memory+swap limits.

    A leak's ramp, a spike's peak and the moment of the kill are easier to see than to read.
    """
    plt = _pyplot()
    ran = [timeline for timeline in timelines if timeline.samples]
    fig, axes = plt.subplots(len(ran) or 1, 1, figsize=(10, 2.4 * max(1, len(ran))), squeeze=False)
    for ax, run in zip(axes[:, 0], ran, strict=False):
        times = [t for t, _, _ in run.samples]
        rss = [(r or 0) / MiB for _, r, _ in run.samples]
        live = [(a or 0) / MiB for _, _, a in run.samples]
        colour = COLOURS[run.outcome]
        ax.plot(times, rss, color=colour, label="resident (RSS)")
        ax.plot(times, live, color=colour, linestyle=":", label="allocated by the workload")
        if run.memory_bytes:
            ax.axhline(run.memory_bytes / MiB, color="#1f77b4", linestyle="--",
                       label="memory limit")  # fmt: skip
            if run.usable_swap_bytes:
                ax.axhline((run.memory_bytes + run.usable_swap_bytes) / MiB, color="#aec7e8",
                           linestyle="--", label="memory + usable swap")  # fmt: skip
        if run.outcome == Outcome.OOM_KILLED and times:
            ax.plot(times[-1], rss[-1], marker="X", markersize=12, color=colour, label="OOM kill")
        ax.set_title(run.title, fontsize=9)
        ax.set_ylabel("MiB")
        ax.legend(loc="upper left", fontsize=7)
    axes[-1, 0].set_xlabel("seconds since start")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass(frozen=True)
class Bar:
    """One line of the limits chart, in plain numbers (any runner: Docker, a pod)."""

    label: str
    memory_bytes: int
    swap_bytes: int
    demand_bytes: int
    peak_bytes: int | None
    outcome: Outcome
    note: str = ""
    """Why it did not run (drawn instead of a peak)."""


def plot_bars(bars: Sequence[Bar], path: Path) -> None:
    plt = _pyplot()
    height = max(3.0, 0.6 * len(bars) + 1.5)
    fig, ax = plt.subplots(figsize=(11, height))
    ys = list(range(len(bars)))
    memory = [bar.memory_bytes / MiB for bar in bars]
    ax.barh(ys, memory, color="#1f77b4", alpha=0.8, label="memory limit")
    ax.barh(ys, [bar.swap_bytes / MiB for bar in bars], left=memory, color="#aec7e8",
            label="usable swap")  # fmt: skip
    ax.scatter([bar.demand_bytes / MiB for bar in bars], ys, marker="|", s=400, color="black",
               label="workload demand", zorder=3)  # fmt: skip
    peaks = [float("nan") if bar.peak_bytes is None else bar.peak_bytes / MiB for bar in bars]
    ax.scatter(peaks, ys, marker="o", color=[COLOURS[bar.outcome] for bar in bars], s=60,
               zorder=4, label="observed peak")  # fmt: skip
    for y, bar in zip(ys, bars, strict=True):
        if bar.note:
            ax.text(10, y, f"did not run: {bar.note[:90]}", va="center", fontsize=7,
                    color=COLOURS[Outcome.REFUSED])  # fmt: skip
    ax.set_yticks(ys, [bar.label for bar in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MiB")
    ax.set_title(
        "memory + swap given vs workload demand (dot colour: red OOMKilled, green completed)"
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_swap_cost(
    entries: Sequence[tuple[str, float | None, float | None]],
    path: Path,
    *,
    labels: tuple[str, str] = ("one pass", "re-access"),
    cheap_ratio: float = 1.5,
) -> None:
    """Slowdown against the unconstrained twin per runtime: (runtime, one pass, re-access).

    A missing ratio (the runtime refused, the run was killed) is drawn as no bar, with a note.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(entries) + 2) + 2.5, 4))
    xs = list(range(len(entries)))
    width = 0.38
    for offset, index, colour, label in ((-width / 2, 1, "#1f77b4", labels[0]),
                                         (width / 2, 2, "#d62728", labels[1])):  # fmt: skip
        values = [entry[1] if index == 1 else entry[2] for entry in entries]
        ax.bar([x + offset for x in xs], [v or float("nan") for v in values], width,
               color=colour, label=label)  # fmt: skip
        for x, value in zip(xs, values, strict=True):
            text = "n/a" if value is None else f"{value:.1f}x"
            ax.text(x + offset, (value or 1.0) * 1.06, text, ha="center", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.8, label="unconstrained (1x)")
    ax.axhline(cheap_ratio, color="#7f7f7f", linestyle="--", linewidth=0.8,
               label=f"cheap up to {cheap_ratio:g}x")  # fmt: skip
    ax.set_xticks(xs, [entry[0] for entry in entries], fontsize=8)
    ratios = [v for entry in entries for v in entry[1:] if v is not None]
    ax.set_yscale("log")  # one pass is a few times slower, re-access tens of times
    ax.set_ylim(0.8, max([cheap_ratio, *ratios]) * 2)
    ax.set_ylabel("time / time with memory enough (log)")
    ax.set_title("what surviving by swap costs (500m/1g vs no limit pressure)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
