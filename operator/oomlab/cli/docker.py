"""``oomlab docker run`` and ``oomlab docker matrix``: experiments on a Docker or podman engine."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated

import typer

from oomlab.cli.container_runs import docker_prediction
from oomlab.cli.errors import App, fail
from oomlab.cli.options import (
    UNSET,
    BaseOpt,
    ChunkOpt,
    EngineOpt,
    HoldOpt,
    ImageOpt,
    IntervalOpt,
    JsonOpt,
    ModeOpt,
    ReaccessOpt,
    RuntimeOpt,
    RuntimesOpt,
    SizeOpt,
    StepOpt,
    TimelineOpt,
    TimeoutOpt,
    WindowOpt,
    build_workload,
    split_list,
)
from oomlab.cli.output import run_with_progress, show_rows
from oomlab.rules.workload import DEFAULT_IMAGE, Mode
from oomlab.runners import ContainerRun

docker_app = App(help="Run experiments on a local Docker (or podman) engine.")


@docker_app.command("run")
def docker_run(
    memory: Annotated[str | None, typer.Option(help="Docker --memory (500m = 500 MiB).")] = "500m",
    memory_swap: Annotated[
        str | None, typer.Option(help="Docker --memory-swap: memory+swap, -1 unlimited.")
    ] = None,
    runtime: RuntimeOpt = "runc",
    engine: EngineOpt = "docker",
    mode: ModeOpt = Mode.BULK,
    size: SizeOpt = "1000Mi",
    chunk: ChunkOpt = None,
    window: WindowOpt = None,
    step: StepOpt = None,
    interval: IntervalOpt = None,
    base: BaseOpt = None,
    hold: HoldOpt = 0.0,
    reaccess: ReaccessOpt = 0,
    image: ImageOpt = DEFAULT_IMAGE,
    timeout: TimeoutOpt = 180.0,
    as_json: JsonOpt = False,
    timeline: TimelineOpt = None,
) -> None:
    """Run one workload under `docker run --memory --memory-swap` and explain the outcome."""
    workload = build_workload(mode, size, chunk, window, step, interval, base, hold, reaccess)
    run = ContainerRun(workload, memory, memory_swap, runtime, engine, image, timeout)
    docker_prediction(run, None)  # reject impossible flags before touching the engine
    rows = run_with_progress([run], quiet=True)
    show_rows(rows, title="oomlab docker run", as_json=as_json, timeline=timeline)
    if rows[0].result is None:
        fail(rows[0].error)


@docker_app.command("matrix")
def docker_matrix(
    memory: Annotated[list[str], typer.Option(help="--memory values (repeat or comma list).")] = [  # noqa: B006
        "500m"
    ],
    memory_swap: Annotated[
        list[str], typer.Option(help="--memory-swap values; 'unset' leaves the flag out.")
    ] = ["500m", "1g", UNSET, "-1"],  # noqa: B006
    runtime: RuntimesOpt = ["runc", "crun"],  # noqa: B006
    engine: Annotated[list[str], typer.Option(help="docker, podman.")] = ["docker"],  # noqa: B006
    mode: Annotated[list[str], typer.Option(help="Workload modes.")] = ["bulk", "streaming"],  # noqa: B006
    size: SizeOpt = "1000Mi",
    image: ImageOpt = DEFAULT_IMAGE,
    timeout: TimeoutOpt = 180.0,
    as_json: JsonOpt = False,
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG chart here.")] = None,
) -> None:
    """Every combination of memory x memory-swap x runtime x engine x mode, predicted and run."""
    runs = []
    for eng, rt, md, mem, swap in itertools.product(
        split_list(engine),
        split_list(runtime),
        split_list(mode),
        split_list(memory),
        split_list(memory_swap),
    ):
        try:
            workload_mode = Mode(md)
        except ValueError:
            fail(f"--mode {md!r} is not one of {', '.join(m.value for m in Mode)}")
        workload = build_workload(workload_mode, size, None, None, None, None, None, 0.0)
        run = ContainerRun(workload, mem, None if swap == UNSET else swap, rt, eng, image, timeout)
        docker_prediction(run, None)
        runs.append(run)
    rows = run_with_progress(runs, quiet=as_json)
    show_rows(rows, title="oomlab docker matrix", as_json=as_json, plot=plot)
