"""``oomlab swap-cost``: what surviving by swap costs, each run against its unconstrained twin."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from oomlab.cli.container_runs import Row, docker_prediction
from oomlab.cli.errors import fail
from oomlab.cli.options import (
    ChunkOpt,
    EngineOpt,
    ImageOpt,
    JsonOpt,
    ModeOpt,
    RuntimeOpt,
    SizeOpt,
    TimeoutOpt,
    build_workload,
    split_list,
)
from oomlab.cli.output import out, outcome_style, run_with_progress
from oomlab.rules.units import human
from oomlab.rules.workload import DEFAULT_IMAGE, Mode
from oomlab.runners import ContainerRun


def _render_costs(pairs: Sequence[tuple[Row, Row]]) -> Table:
    from oomlab.rules.swapcost import swap_cost

    table = Table(title="oomlab swap-cost", show_lines=True)
    for name in ("run", "observed", "time", "memory\nenough", "slowdown", "swapped in",
                 "major\nfaults", "in swap\nat end"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("run", "observed") else "right",
                         no_wrap=True)  # fmt: skip
    table.add_column("verdict", ratio=1, min_width=30)
    for row, twin in pairs:
        if row.result is None or twin.result is None:
            table.add_row(row.run.workload.describe(), "error", *["-"] * 6, row.error or twin.error)
            continue
        cost = swap_cost(row.result, twin.result)
        swap = cost.swap
        at_end = swap.swap_bytes_at_end if swap else None
        table.add_row(
            f"{row.run.engine}/{row.run.runtime}\n{row.run.workload.describe()}\n"
            + " ".join(row.run.flags()),
            outcome_style(row.result.outcome.value),
            "-" if cost.seconds is None else f"{cost.seconds:.2f}s",
            "-" if cost.baseline_seconds is None else f"{cost.baseline_seconds:.2f}s\n"
            + " ".join(twin.run.flags()),
            "-" if cost.ratio is None else f"[bold]{cost.ratio:.1f}x[/]",
            "-" if swap is None or swap.swapin_bytes is None
            else human(swap.swapin_bytes) + ("\n(system)" if swap.swapin_scope == "system" else ""),
            "-" if swap is None or swap.major_faults is None else f"{swap.major_faults:,}",
            "-" if at_end is None else human(at_end),
            cost.sentence,
        )  # fmt: skip
    return table


def swap_cost_cmd(
    memory: Annotated[str, typer.Option(help="Docker --memory of the run that swaps.")] = "500m",
    memory_swap: Annotated[str, typer.Option(help="Its --memory-swap.")] = "1g",
    reaccess: Annotated[
        list[str], typer.Option(help="Re-access passes to compare (repeat or comma list).")
    ] = ["0", "3"],  # noqa: B006
    runtime: RuntimeOpt = "runc",
    engine: EngineOpt = "docker",
    mode: ModeOpt = Mode.BULK,
    size: SizeOpt = "1000Mi",
    chunk: ChunkOpt = None,
    image: ImageOpt = DEFAULT_IMAGE,
    timeout: TimeoutOpt = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """What surviving by swap costs: each run against its twin with memory enough and no swap.

    The slowdown is the workload's own working time (allocation plus re-access passes) over the
    twin's; swap-ins come from the container's cgroup where the kernel counts them per cgroup
    (v2, 6.12+), else from /proc/vmstat (system-wide, said so).
    """
    from oomlab.cli.report_model import unconstrained_twin

    runs = []
    for passes in split_list(reaccess):
        if not passes.isdigit():
            fail(f"--reaccess {passes!r} is not a whole number of passes")
        workload = build_workload(mode, size, chunk, None, None, None, None, 0.0, int(passes))
        run = ContainerRun(workload, memory, memory_swap, runtime, engine, image, timeout)
        docker_prediction(run, None)
        runs += [unconstrained_twin(run), run]
    rows = run_with_progress(runs, quiet=as_json)
    pairs = [(rows[i + 1], rows[i]) for i in range(0, len(rows), 2)]
    if as_json:
        from oomlab.rules.swapcost import swap_cost

        def cost(row: Row, twin: Row) -> Any:
            if row.result is None or twin.result is None:
                return None
            value = swap_cost(row.result, twin.result)
            return {**asdict(value), "verdict": value.verdict.value}

        print(json.dumps(
            [{"run": row.to_dict(), "twin": twin.to_dict(), "swap_cost": cost(row, twin)}
             for row, twin in pairs], indent=2,
        ))  # fmt: skip
        return
    out.print(_render_costs(pairs))
