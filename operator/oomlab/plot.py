"""A chart of a matrix run: for each row, the memory and swap it was given, what it needed, and
what happened. One picture shows why 500m/1g survives and 500m/500m does not."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from oomlab.results import Outcome
from oomlab.semantics import docker_allowance, usable_swap
from oomlab.units import MiB

if TYPE_CHECKING:
    from oomlab.cli import Row

COLOURS = {
    Outcome.OOM_KILLED: "#d62728",
    Outcome.COMPLETED: "#2ca02c",
    Outcome.FAILED: "#7f7f7f",
    Outcome.REFUSED: "#9467bd",
    Outcome.TIMED_OUT: "#ff7f0e",
}


def plot_rows(rows: Sequence[Row], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("plotting needs matplotlib: pip install 'oomlab[plot]'") from None

    labels, memory, swap, demand, peak, colours = [], [], [], [], [], []
    for row in rows:
        allowance = docker_allowance(row.run.memory_bytes, row.run.memory_swap_bytes)
        host_swap = row.result.host.swap_total_bytes if row.result else None
        usable, _ = usable_swap(allowance, host_swap)
        labels.append(
            f"{row.run.engine}/{row.run.runtime} {row.run.workload.mode.value}\n"
            + " ".join(row.run.flags())
        )
        memory.append((allowance.memory_bytes or 0) / MiB)
        swap.append((usable if usable is not None else host_swap or 0) / MiB)
        demand.append(row.run.workload.demand_bytes() / MiB)
        ran = row.result is not None and row.result.outcome != Outcome.REFUSED
        peak.append(
            (row.result.peak_usage_bytes or 0) / MiB if row.result and ran else float("nan")
        )
        outcome = row.result.outcome if row.result else Outcome.REFUSED
        colours.append(COLOURS[outcome])

    height = max(3.0, 0.6 * len(rows) + 1.5)
    fig, ax = plt.subplots(figsize=(11, height))
    ys = list(range(len(rows)))
    ax.barh(ys, memory, color="#1f77b4", alpha=0.8, label="memory limit")
    ax.barh(ys, swap, left=memory, color="#aec7e8", label="usable swap")
    ax.scatter(demand, ys, marker="|", s=400, color="black", label="workload demand", zorder=3)
    ax.scatter(peak, ys, marker="o", color=colours, s=60, zorder=4, label="observed peak")
    for y, row in zip(ys, rows, strict=True):
        if row.result is None or row.result.outcome == Outcome.REFUSED:
            reason = row.result.reason if row.result else row.error
            ax.text(10, y, f"did not run: {reason[:90]}", va="center", fontsize=7,
                    color=COLOURS[Outcome.REFUSED])  # fmt: skip
    ax.set_yticks(ys, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MiB")
    ax.set_title(
        "memory + swap given vs workload demand (dot colour: red OOMKilled, green completed)"
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
