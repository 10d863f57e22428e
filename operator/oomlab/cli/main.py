"""The ``oomlab`` command: run experiments on Docker/podman, predict, compare with Kubernetes."""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oomlab.cli.container_runs import Row, describe_host, docker_prediction, execute
from oomlab.cli.errors import App, fail, guarded
from oomlab.cli.explain import explain
from oomlab.cli.kube import kube_app
from oomlab.cli.thp import thp_compare
from oomlab.rules.results import CgroupVersion, Outcome, Predicted
from oomlab.rules.units import human, parse_binary_size
from oomlab.rules.workload import DEFAULT_IMAGE, Mode, WorkloadSpec
from oomlab.runners import ContainerRun, EngineError, container_runner
from oomlab.runners.info import this_machine

app = App(
    help="OOM-kill and swap experiments: Docker, podman and Kubernetes, predicted and observed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
docker_app = App(help="Run experiments on a local Docker (or podman) engine.")
app.add_typer(docker_app, name="docker")
app.add_typer(kube_app, name="kube")
app.command("thp-compare")(thp_compare)
app.command("explain")(explain)

out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)

UNSET = "unset"


def _sigterm_as_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def build_workload(
    mode: Mode,
    size: str,
    chunk: str | None,
    window: int | None,
    step: str | None,
    interval: float | None,
    base: str | None,
    hold: float,
    reaccess: int = 0,
) -> WorkloadSpec:
    def opt(value: str | None, name: str) -> int | None:
        return None if value is None else parse_binary_size(value, field=name)

    return WorkloadSpec(
        mode=mode,
        size_bytes=parse_binary_size(size, field="--size"),
        chunk_bytes=opt(chunk, "--chunk"),
        window=window,
        step_bytes=opt(step, "--step"),
        interval_s=interval,
        base_bytes=opt(base, "--base"),
        hold_s=hold,
        reaccess=reaccess,
    )


def _outcome_style(value: str | None) -> str:
    return {
        Outcome.OOM_KILLED.value: "[red]OOMKilled[/]",
        Outcome.COMPLETED.value: "[green]Completed[/]",
        Predicted.BORDERLINE.value: "[yellow]Borderline[/]",
        Outcome.REFUSED.value: "[magenta]Refused[/]",
    }.get(value or "", value or "-")


def render(rows: Sequence[Row], title: str) -> Table:
    hosts = {row.run.engine: row.result.host for row in rows if row.result}
    caption = "; ".join(describe_host(info) for info in hosts.values()) or None
    table = Table(title=title, caption=caption, show_lines=True)
    table.add_column("run", no_wrap=True)
    table.add_column("predicted", no_wrap=True)
    table.add_column("observed", no_wrap=True)
    table.add_column("got to", justify="right", no_wrap=True)
    table.add_column("peak\nmem+swap", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("why", ratio=1, min_width=40)
    for row in rows:
        result = row.result
        agree = {True: " ✓", False: " [bold red]✗[/]", None: ""}[row.agrees]
        if result:
            oom = " OOMKilled" if result.oom_killed else ""
            code = "" if result.exit_code is None else f"\nexit {result.exit_code}{oom}"
            observed = _outcome_style(result.outcome.value) + agree + code
        else:
            observed = "[magenta]error[/]"
        got = result.progress.allocated_bytes if result else None
        why = row.prediction.explanation if row.prediction else ""
        if result and result.outcome in (Outcome.REFUSED, Outcome.FAILED, Outcome.TIMED_OUT):
            why = f"Observed: {result.reason}. Predicted: {why}"
        elif row.error:
            why = row.error
        table.add_row(
            f"{row.run.engine}/{row.run.runtime}\n{row.run.workload.describe()}\n"
            + (" ".join(row.run.flags()) or "(no limits)"),
            _outcome_style(row.prediction.outcome.value if row.prediction else None),
            observed,
            human(got) if got is not None else "-",
            human(result.peak_usage_bytes) if result and result.peak_usage_bytes else "-",
            f"{result.duration_s:.1f}s" if result and result.duration_s is not None else "-",
            why,
        )
    return table


@contextlib.contextmanager
def progress_bar(
    total: int, description: str
) -> Iterator[tuple[Callable[[Row | str], None], Callable[[str], None]]]:
    """A rich progress bar on stderr; yields (print a finished row, or a line about one, and
    advance; describe the step now running)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(row: Row | str) -> None:
            if isinstance(row, str):
                line = row
            else:
                outcome = row.result.outcome.value if row.result else "not run"
                line = (
                    f"  {row.run.engine}/{row.run.runtime} {row.run.workload.describe()} "
                    f"{' '.join(row.run.flags())}: {outcome}"
                )
            bar.console.print(line, highlight=False, soft_wrap=True)
            bar.advance(task)

        def describe(text: str) -> None:
            bar.update(task, description=text)

        yield advance, describe


def run_with_progress(runs: Sequence[ContainerRun], *, quiet: bool) -> list[Row]:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    if quiet or len(runs) == 1:
        return execute(runs)
    with progress_bar(len(runs), "experiments") as (advance, _):
        return execute(runs, advance)


def report(
    rows: Sequence[Row],
    *,
    title: str,
    as_json: bool,
    plot: Path | None = None,
    timeline: Path | None = None,
) -> None:
    if as_json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
    else:
        out.print(render(rows, title))
    if plot is not None:
        from oomlab.cli.plot import plot_rows

        plot_rows(rows, plot)
        err.print(f"wrote {plot}")
    if timeline is not None:
        from oomlab.cli.plot import plot_timeline

        plot_timeline(rows, timeline)
        err.print(f"wrote {timeline}")
    if any(row.agrees is False for row in rows):
        err.print("[bold red]some observations differ from the prediction[/] (marked ✗)")


EngineOpt = Annotated[
    str,
    typer.Option(
        help="docker, podman, or ENGINE@ADDRESS / ENGINE@NAME (docker@vm: $OOMLAB_ENGINE_VM, "
        "podman@vm: $OOMLAB_ENGINE_PODMAN_VM)."
    ),
]
ModeOpt = Annotated[Mode, typer.Option(help="Workload pattern.")]
SizeOpt = Annotated[str, typer.Option(help="Total (peak) size, binary units: 1000Mi, 1Gi.")]
ChunkOpt = Annotated[str | None, typer.Option(help="Chunk size (bulk, streaming).")]
WindowOpt = Annotated[int | None, typer.Option(help="Chunks kept alive (streaming).", min=1)]
StepOpt = Annotated[str | None, typer.Option(help="Growth per interval (leak).")]
IntervalOpt = Annotated[float | None, typer.Option(help="Seconds between steps (leak).", min=0)]
BaseOpt = Annotated[str | None, typer.Option(help="Steady base before the spike (spike).")]
HoldOpt = Annotated[float, typer.Option(help="Seconds to hold the memory at the end.", min=0)]
ImageOpt = Annotated[str, typer.Option(help="Workload image.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds before a run is killed.", min=1)]
ReaccessOpt = Annotated[
    int, typer.Option(help="Passes over the held memory after allocating (memhog).", min=0)
]
TimelineOpt = Annotated[
    Path | None, typer.Option("--timeline", help="Also write a PNG of memory over time here.")
]


@docker_app.command("run")
def docker_run(
    memory: Annotated[str | None, typer.Option(help="Docker --memory (500m = 500 MiB).")] = "500m",
    memory_swap: Annotated[
        str | None, typer.Option(help="Docker --memory-swap: memory+swap, -1 unlimited.")
    ] = None,
    runtime: Annotated[str, typer.Option(help="OCI runtime: runc, crun.")] = "runc",
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
    report(rows, title="oomlab docker run", as_json=as_json, timeline=timeline)
    if rows[0].result is None:
        fail(rows[0].error)


def _split(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@docker_app.command("matrix")
def docker_matrix(
    memory: Annotated[list[str], typer.Option(help="--memory values (repeat or comma list).")] = [  # noqa: B006
        "500m"
    ],
    memory_swap: Annotated[
        list[str], typer.Option(help="--memory-swap values; 'unset' leaves the flag out.")
    ] = ["500m", "1g", UNSET, "-1"],  # noqa: B006
    runtime: Annotated[list[str], typer.Option(help="OCI runtimes.")] = ["runc", "crun"],  # noqa: B006
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
        _split(engine), _split(runtime), _split(mode), _split(memory), _split(memory_swap)
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
    report(rows, title="oomlab docker matrix", as_json=as_json, plot=plot)


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
            _outcome_style(row.result.outcome.value),
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


@app.command("swap-cost")
def swap_cost_cmd(
    memory: Annotated[str, typer.Option(help="Docker --memory of the run that swaps.")] = "500m",
    memory_swap: Annotated[str, typer.Option(help="Its --memory-swap.")] = "1g",
    reaccess: Annotated[
        list[str], typer.Option(help="Re-access passes to compare (repeat or comma list).")
    ] = ["0", "3"],  # noqa: B006
    runtime: Annotated[str, typer.Option(help="OCI runtime: runc, crun.")] = "runc",
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
    from oomlab.cli.report import unconstrained_twin

    runs = []
    for passes in _split(reaccess):
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


@app.command("report")
def report_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the report.")] = Path(
        "report"
    ),
    engine: Annotated[
        list[str], typer.Option(help="Engine specs: docker, podman, ENGINE@NAME (repeat or list).")
    ] = ["docker", "podman"],  # noqa: B006
    runtime: Annotated[list[str], typer.Option(help="OCI runtimes.")] = ["runc", "crun"],  # noqa: B006
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
) -> None:
    """The whole comparison on every runtime it can reach, written to a report directory.

    report.md (tables, findings, where the time went), report.json, readme-table.md and PNG
    charts. Each cell is predicted for its runtime's own host and observed once; a disagreement
    is a finding, explained, never retried. Columns on different machines (host engines, VM
    engines, the cluster) run at the same time.
    """
    from oomlab.cli import report as rep

    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    cols = rep.columns(_split(engine), _split(runtime))
    total = rep.planned_runs(cols, rep.SCENARIOS) + rep.planned_cluster_cells(cluster)
    with progress_bar(total, "report") as (advance, describe):
        result = rep.measure_all(
            cols, cluster=cluster, image=image, timeout_s=timeout,
            cluster_timeout_s=cluster_timeout, on_step=describe, on_done=advance,
            on_cluster_done=advance, skip=_split(skip),
        )  # fmt: skip
    written = rep.write(result, out_dir, charts=charts)
    if readme_table:
        print(rep.readme_table(result), end="")
    slow = rep.longest(result.steps)
    parts = rep.column_seconds(result)
    biggest = next(iter(parts.items()), ("-", 0.0))
    group = rep.largest_group(result)
    err.print(
        f"wrote {', '.join(str(p) for p in written)}\n"
        f"wall time {result.wall_s:.1f} s; longest step: "
        f"{slow.name if slow else '-'} ({slow.seconds if slow else 0:.1f} s); largest part: "
        f"{biggest[0]} ({biggest[1]:.1f} s)"
        + (f"; slowest group: {group[0]} ({group[1]:.1f} s)" if group else "")
        + f"; {len(rep.findings(result))} finding(s)",
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
    report(rows, title="oomlab demo: the seed experiment", as_json=as_json, timeline=timeline)
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
    out.print(f"{_outcome_style(prediction.outcome.value)}: {prediction.explanation}")


@app.command()
def parity(
    name: Annotated[str, typer.Argument(help="OOMExperiment name.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
    engine: Annotated[str, typer.Option(help="docker or podman.")] = "docker",
    timeout: TimeoutOpt = 180.0,
) -> None:
    """Run an OOMExperiment's workload under its spec.docker flags here; hand the run to the
    operator, which records it in the experiment's status."""

    def action() -> None:
        from oomlab import kube
        from oomlab.experiment import ExperimentSpec, InvalidSpec
        from oomlab.operator.docker_view import OBSERVATION_ANNOTATION

        try:
            body = kube.get_experiment(namespace, name)
        except kube.NotFound:
            fail(f"OOMExperiment {namespace}/{name} not found")
        try:
            spec = ExperimentSpec.from_spec(body.get("spec") or {})
        except InvalidSpec as exc:
            fail(f"{exc.field}: {exc}")
        if spec.docker is None:
            fail(f"OOMExperiment {namespace}/{name} has no spec.docker flags to compare with")
        run = ContainerRun(
            spec.workload,
            spec.docker.memory,
            spec.docker.memory_swap,
            spec.docker.runtime,
            engine,
            spec.image,
            timeout,
        )
        rows = run_with_progress([run], quiet=True)
        report(rows, title=f"oomlab parity {namespace}/{name}", as_json=False)
        result = rows[0].result
        if result is None:
            fail(rows[0].error)
        observed_at = kube.record_docker_observation(namespace, name, result, spec.docker)
        status = kube.wait_for_docker_fold(
            namespace, name, observed_at, timeout_s=kube.FOLD_TIMEOUT_S
        )
        if status is None:
            out.print(
                f"parity: handed to the operator (annotation {OBSERVATION_ANNOTATION}), which has "
                f"not folded it in after {kube.FOLD_TIMEOUT_S:.0f}s; it will when it runs: "
                f"kubectl get oomx {name} -n {namespace}"
            )
            return
        verdict = status.get("parity") or {}
        out.print(
            f"parity: [bold]{verdict.get('result', 'Unknown')}[/]: {verdict.get('explanation', '')}"
        )

    guarded(action)


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


if __name__ == "__main__":
    main()
