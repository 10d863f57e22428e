"""The ``oomlab`` command: run experiments on Docker/podman, predict, compare with Kubernetes.

The app is composed here; its command groups live in their own modules (:mod:`docker`,
:mod:`kube`, :mod:`parity`, :mod:`swap_cost`, :mod:`thp`), what they print in :mod:`output`.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from oomlab.cli.container_runs import describe_host, docker_prediction
from oomlab.cli.docker import docker_app
from oomlab.cli.errors import App, fail
from oomlab.cli.explain import explain
from oomlab.cli.kube import kube_app
from oomlab.cli.memqos import memqos_compare
from oomlab.cli.options import (
    ChunkOpt,
    ImageOpt,
    JsonOpt,
    ModeOpt,
    RuntimesOpt,
    SizeOpt,
    TimelineOpt,
    TimeoutOpt,
    WindowOpt,
    build_workload,
    split_list,
)
from oomlab.cli.output import (
    err,
    out,
    outcome_style,
    progress_bar,
    run_with_progress,
    show_rows,
    sigterm_as_interrupt,
)
from oomlab.cli.parity import parity
from oomlab.cli.swap_cost import swap_cost_cmd
from oomlab.cli.thp import thp_compare
from oomlab.rules.results import CgroupVersion
from oomlab.rules.units import parse_binary_size
from oomlab.rules.workload import DEFAULT_IMAGE, Mode, WorkloadSpec
from oomlab.runners import ContainerRun, EngineError, container_runner
from oomlab.runners.info import this_machine

app = App(
    help="OOM-kill and swap experiments: Docker, podman and Kubernetes, predicted and observed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(docker_app, name="docker")
app.add_typer(kube_app, name="kube")
app.command("thp-compare")(thp_compare)
app.command("memqos-compare")(memqos_compare)
app.command("swap-cost")(swap_cost_cmd)
app.command("explain")(explain)


@app.command("report")
def report_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the report.")] = Path(
        "report"
    ),
    engine: Annotated[
        list[str], typer.Option(help="Engine specs: docker, podman, ENGINE@NAME (repeat or list).")
    ] = ["docker", "podman"],  # noqa: B006
    runtime: RuntimesOpt = ["runc", "crun"],  # noqa: B006
    image: ImageOpt = DEFAULT_IMAGE,
    timeout: TimeoutOpt = 300.0,
    readme_table: Annotated[
        bool, typer.Option("--readme-table", help="Print the README's runtime table (Markdown).")
    ] = False,
    charts: Annotated[bool, typer.Option(help="Draw the PNG charts.")] = True,
    cluster: Annotated[
        bool,
        typer.Option(
            help="Also the cluster's columns through the operator (KUBECONFIG): kubelet NoSwap "
            "v1 runc, LimitedSwap v2 runc and crun; unreachable ones say why."
        ),
    ] = True,
    cluster_timeout: Annotated[
        float, typer.Option(help="Seconds per cluster experiment (the VM node is emulated).")
    ] = 900.0,
    skip: Annotated[
        list[str],
        typer.Option(
            help="Cells to leave out for time, COLUMN:SCENARIO shell globs (repeat), for example "
            "'docker@vm/*:reaccess'; each shows 'not run' with the pattern."
        ),
    ] = [],  # noqa: B006
    keep_sweep: Annotated[
        bool,
        typer.Option(
            "--keep-sweep",
            help="Keep the cluster's OOMSweep (oomlab-report-HHMMSS) and its experiments for "
            "kubectl; by default the report deletes it.",
        ),
    ] = False,
) -> None:
    """The whole comparison on every runtime it can reach, written to a report directory.

    report.md (tables, findings, where the time went), report.json, readme-table.md and PNG
    charts. Each cell is predicted for its runtime's own host and observed once; a disagreement
    is a finding, explained, never retried. Columns on different machines (host engines, VM
    engines, the cluster) run at the same time.
    """
    from oomlab.cli import report as rep
    from oomlab.cli import report_findings as judged
    from oomlab.cli import report_model as model
    from oomlab.cli import report_render as render

    signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    cols = model.columns(split_list(engine), split_list(runtime))
    total = model.planned_runs(cols, model.SCENARIOS) + rep.planned_cluster_cells(cluster)
    with progress_bar(total, "report") as (advance, describe):
        result = rep.measure_all(
            cols, cluster=cluster, image=image, timeout_s=timeout,
            cluster_timeout_s=cluster_timeout, on_step=describe, on_done=advance,
            on_cluster_done=advance, skip=split_list(skip), keep_sweep=keep_sweep,
        )  # fmt: skip
    written = render.write(result, out_dir, charts=charts)
    if readme_table:
        print(render.readme_table(result), end="")
    slow = judged.longest(result.steps)
    parts = judged.column_seconds(result)
    biggest = next(iter(parts.items()), ("-", 0.0))
    group = judged.largest_group(result)
    err.print(
        f"wrote {', '.join(str(p) for p in written)}\n"
        f"wall time {result.wall_s:.1f} s; longest step: "
        f"{slow.name if slow else '-'} ({slow.seconds if slow else 0:.1f} s); largest part: "
        f"{biggest[0]} ({biggest[1]:.1f} s)"
        + (f"; slowest group: {group[0]} ({group[1]:.1f} s)" if group else "")
        + f"; {len(judged.findings(result))} finding(s)",
        highlight=False,
        soft_wrap=True,
    )


def seed_runs(image: str, engine: str = "docker") -> list[ContainerRun]:
    """The seed experiment and its neighbours, as the README's main job runs them."""
    bulk = WorkloadSpec(Mode.BULK, 1000 * 2**20, 500 * 2**20)
    streaming = WorkloadSpec(Mode.STREAMING, 1000 * 2**20, 50 * 2**20, window=2)
    return [
        ContainerRun(bulk, "500m", "500m", engine=engine, image=image),
        ContainerRun(bulk, "500m", "1g", engine=engine, image=image),
        ContainerRun(streaming, "500m", "500m", engine=engine, image=image),
        ContainerRun(bulk, "500m", None, engine=engine, image=image),
    ]


@app.command()
def demo(
    image: ImageOpt = DEFAULT_IMAGE,
    engine: Annotated[str, typer.Option(help="docker or podman.")] = "docker",
    as_json: JsonOpt = False,
    timeline: TimelineOpt = None,
) -> None:
    """The seed experiment on the local engine: 500m/500m, 500m/1g, streaming, swap unset."""
    rows = run_with_progress(seed_runs(image, engine), quiet=as_json)
    show_rows(rows, title="oomlab demo: the seed experiment", as_json=as_json, timeline=timeline)
    if any(row.agrees is False for row in rows):
        raise typer.Exit(1)


@app.command("predict")
def predict_cmd(
    memory: Annotated[str | None, typer.Option(help="Docker --memory.")] = "500m",
    memory_swap: Annotated[str | None, typer.Option(help="Docker --memory-swap.")] = None,
    mode: ModeOpt = Mode.BULK,
    size: SizeOpt = "1000Mi",
    chunk: ChunkOpt = None,
    window: WindowOpt = None,
    host_swap: Annotated[
        str | None,
        typer.Option(help="Host swap (binary units); default: what the engine's host has."),
    ] = None,
    engine: Annotated[str, typer.Option(help="docker or podman: whose host to predict for.")] = (
        "docker"
    ),
) -> None:
    """Predict the outcome under Docker flags without running the workload.

    Without --host-swap the engine is asked what its host has (swap, swap limits); with it,
    nothing is asked and swap limits are assumed to work.
    """
    workload = build_workload(mode, size, chunk, window, None, None, None, 0.0)
    run = ContainerRun(workload, memory, memory_swap, engine=engine)
    if host_swap is not None:
        swap = parse_binary_size(host_swap, field="--host-swap")
        _, prediction = docker_prediction(run, None, host_swap=swap)
    else:
        docker_prediction(run, None)  # reject impossible flags before asking the engine
        try:
            host = container_runner(engine).info()
        except EngineError as exc:
            fail(f"{exc}; or give --host-swap to predict without an engine")
        _, prediction = docker_prediction(run, host)
    out.print(f"{outcome_style(prediction.outcome.value)}: {prediction.explanation}")


app.command()(parity)


@app.command()
def host(
    engine: Annotated[str, typer.Option(help="docker or podman.")] = "docker",
    image: Annotated[str, typer.Option(help="Image the probe container runs (python3).")] = (
        DEFAULT_IMAGE
    ),
    as_json: JsonOpt = False,
) -> None:
    """What the engine's host gives containers: cgroup version, swap, memory, kernel, THP."""
    try:
        facts = container_runner(engine, probe_image=image).info()
        note = ""
    except EngineError as exc:
        facts, note = this_machine(), f"{exc}; this machine instead:"
    if as_json:
        data = asdict(facts)
        data["cgroup_version"] = facts.cgroup_version.value
        print(json.dumps({"engine_error": note or None, **data}, indent=2))
        return
    if note:
        err.print(note, highlight=False, soft_wrap=True)
    out.print(describe_host(facts), highlight=False, soft_wrap=True)
    if facts.cgroup_version == CgroupVersion.V1:
        out.print(
            "cgroup v1: the kubelet gives pods no swap here (NoSwap only); Docker's "
            "--memory-swap works through memory.memsw.limit_in_bytes."
        )


def main(argv: Sequence[str] | None = None) -> None:
    try:
        app(args=list(argv) if argv is not None else None, prog_name="oomlab")
    except KeyboardInterrupt:
        sys.exit(130)


def kubectl_plugin() -> None:
    """``kubectl-oomlab``: kubectl runs it for ``kubectl oomlab ...`` (every oomlab command)."""
    try:
        app(prog_name="kubectl oomlab")
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
