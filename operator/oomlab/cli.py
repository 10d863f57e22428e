"""The ``oomlab`` command: run experiments on Docker/podman, predict, compare with Kubernetes."""

from __future__ import annotations

import itertools
import json
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oomlab.docker_runner import (
    ContainerRun,
    EngineError,
    EngineUnavailable,
    run_container,
)
from oomlab.docker_runner import docker_client as connect_docker
from oomlab.hostfacts import local_host_facts
from oomlab.kube_cli import kube_app
from oomlab.results import CgroupVersion, Outcome, Predicted, RunResult
from oomlab.semantics import Allowance, FlagError, Prediction, docker_allowance, predict
from oomlab.units import SizeError, human, parse_binary_size
from oomlab.workload import DEFAULT_IMAGE, Mode, WorkloadSpec

app = typer.Typer(
    help="OOM-kill and swap experiments: Docker, podman and Kubernetes, predicted and observed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
docker_app = typer.Typer(help="Run experiments on a local Docker (or podman) engine.")
app.add_typer(docker_app, name="docker")
app.add_typer(kube_app, name="kube")

out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)

UNSET = "unset"


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _sigterm_as_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@dataclass(frozen=True)
class Row:
    run: ContainerRun
    prediction: Prediction | None
    result: RunResult | None
    error: str = ""

    @property
    def agrees(self) -> bool | None:
        if self.prediction is None or self.result is None:
            return None
        if self.prediction.outcome == Predicted.BORDERLINE:
            return None
        if self.result.outcome == Outcome.REFUSED:
            return None  # the rules predict memory behaviour; a refusal is reported on its own
        return self.prediction.outcome.value == self.result.outcome.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.run.engine,
            "runtime": self.run.runtime,
            "workload": self.run.workload.describe(),
            "memory": self.run.memory,
            "memory_swap": self.run.memory_swap,
            "predicted": self.prediction.outcome.value if self.prediction else None,
            "explanation": self.prediction.explanation if self.prediction else None,
            "observed": self.result.to_dict() if self.result else None,
            "agrees": self.agrees,
            "error": self.error or None,
        }


def build_workload(
    mode: Mode,
    size: str,
    chunk: str | None,
    window: int | None,
    step: str | None,
    interval: float | None,
    base: str | None,
    hold: float,
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
    )


def docker_prediction(run: ContainerRun, host_swap: int | None) -> tuple[Allowance, Prediction]:
    allowance = docker_allowance(
        run.memory_bytes, run.memory_swap_bytes, as_written=(run.memory, run.memory_swap)
    )
    subject = "Docker" if run.engine == "docker" else "podman"
    return allowance, predict(
        run.workload.demand_bytes(), allowance, host_swap_bytes=host_swap, subject=subject
    )


def execute(
    runs: Sequence[ContainerRun], on_done: Callable[[Row], None] | None = None
) -> list[Row]:
    """Predict then run each experiment; a runtime that refuses is a row, not a crash."""
    host = local_host_facts()
    rows = []
    docker_client = None
    for run in runs:
        _, prediction = docker_prediction(run, host.swap_total_bytes)
        try:
            if run.engine == "docker" and docker_client is None:
                docker_client = connect_docker()
            row = Row(run, prediction, run_container(run, docker_client))
        except EngineUnavailable:
            raise
        except EngineError as exc:
            row = Row(run, prediction, None, str(exc))
        rows.append(row)
        if on_done:
            on_done(row)
    return rows


def _outcome_style(value: str | None) -> str:
    return {
        Outcome.OOM_KILLED.value: "[red]OOMKilled[/]",
        Outcome.COMPLETED.value: "[green]Completed[/]",
        Predicted.BORDERLINE.value: "[yellow]Borderline[/]",
        Outcome.REFUSED.value: "[magenta]Refused[/]",
    }.get(value or "", value or "-")


def render(rows: Sequence[Row], title: str) -> Table:
    host = local_host_facts()
    caption = (
        f"host: cgroup {host.cgroup_version.value}, swap {human(host.swap_total_bytes or 0)}, "
        f"memory {human(host.memory_total_bytes)}, kernel {host.kernel}"
    )
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


def run_with_progress(runs: Sequence[ContainerRun], *, quiet: bool) -> list[Row]:
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    if quiet or len(runs) == 1:
        return execute(runs)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("experiments", total=len(runs))

        def advance(row: Row) -> None:
            outcome = row.result.outcome.value if row.result else "error"
            bar.console.print(
                f"  {row.run.engine}/{row.run.runtime} {row.run.workload.describe()} "
                f"{' '.join(row.run.flags())}: {outcome}",
                highlight=False,
                soft_wrap=True,
            )
            bar.advance(task)

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
        from oomlab.plot import plot_rows

        plot_rows(rows, plot)
        err.print(f"wrote {plot}")
    if timeline is not None:
        from oomlab.plot import plot_timeline

        plot_timeline(rows, timeline)
        err.print(f"wrote {timeline}")
    if any(row.agrees is False for row in rows):
        err.print("[bold red]some observations differ from the prediction[/] (marked ✗)")


def guarded(action: Callable[[], None]) -> None:
    """User errors become one line on stderr and exit 2; Ctrl-C exits 130 after clean-up."""
    try:
        action()
    except (SizeError, FlagError) as exc:
        fail(str(exc))
    except EngineError as exc:
        fail(str(exc), code=3)
    except KeyboardInterrupt:
        err.print("interrupted; containers removed")
        raise typer.Exit(130) from None


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
    engine: Annotated[str, typer.Option(help="docker or podman.")] = "docker",
    mode: ModeOpt = Mode.BULK,
    size: SizeOpt = "1000Mi",
    chunk: ChunkOpt = None,
    window: WindowOpt = None,
    step: StepOpt = None,
    interval: IntervalOpt = None,
    base: BaseOpt = None,
    hold: HoldOpt = 0.0,
    image: ImageOpt = DEFAULT_IMAGE,
    timeout: TimeoutOpt = 180.0,
    as_json: JsonOpt = False,
    timeline: TimelineOpt = None,
) -> None:
    """Run one workload under `docker run --memory --memory-swap` and explain the outcome."""

    def action() -> None:
        workload = build_workload(mode, size, chunk, window, step, interval, base, hold)
        run = ContainerRun(workload, memory, memory_swap, runtime, engine, image, timeout)
        docker_prediction(run, None)  # reject impossible flags before touching the engine
        rows = run_with_progress([run], quiet=True)
        report(rows, title="oomlab docker run", as_json=as_json, timeline=timeline)
        result = rows[0].result
        if result is None:
            fail(rows[0].error, code=3)

    guarded(action)


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

    def action() -> None:
        runs = []
        for eng, rt, md, mem, swap in itertools.product(
            _split(engine), _split(runtime), _split(mode), _split(memory), _split(memory_swap)
        ):
            try:
                workload_mode = Mode(md)
            except ValueError:
                fail(f"--mode {md!r} is not one of {', '.join(m.value for m in Mode)}")
            workload = build_workload(workload_mode, size, None, None, None, None, None, 0.0)
            run = ContainerRun(
                workload, mem, None if swap == UNSET else swap, rt, eng, image, timeout
            )
            docker_prediction(run, None)
            runs.append(run)
        rows = run_with_progress(runs, quiet=as_json)
        report(rows, title="oomlab docker matrix", as_json=as_json, plot=plot)

    guarded(action)


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

    def action() -> None:
        rows = run_with_progress(seed_runs(image, engine), quiet=as_json)
        report(rows, title="oomlab demo: the seed experiment", as_json=as_json, timeline=timeline)
        if any(row.agrees is False for row in rows):
            raise typer.Exit(1)

    guarded(action)


@app.command("predict")
def predict_cmd(
    memory: Annotated[str | None, typer.Option(help="Docker --memory.")] = "500m",
    memory_swap: Annotated[str | None, typer.Option(help="Docker --memory-swap.")] = None,
    mode: ModeOpt = Mode.BULK,
    size: SizeOpt = "1000Mi",
    chunk: ChunkOpt = None,
    window: WindowOpt = None,
    host_swap: Annotated[
        str | None, typer.Option(help="Host swap (binary units); default: this host's.")
    ] = None,
) -> None:
    """Predict the outcome under Docker flags without running anything."""

    def action() -> None:
        workload = build_workload(mode, size, chunk, window, None, None, None, 0.0)
        run = ContainerRun(workload, memory, memory_swap)
        swap = (
            parse_binary_size(host_swap, field="--host-swap")
            if host_swap
            else local_host_facts().swap_total_bytes
        )
        _, prediction = docker_prediction(run, swap)
        out.print(f"{_outcome_style(prediction.outcome.value)}: {prediction.explanation}")

    guarded(action)


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
        from oomlab.docker_view import OBSERVATION_ANNOTATION
        from oomlab.pods import ExperimentSpec, InvalidSpec

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
            fail(rows[0].error, code=3)
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
def host() -> None:
    """What this host gives containers: cgroup version, swap, memory."""
    facts = local_host_facts()
    out.print(
        f"cgroup {facts.cgroup_version.value}; swap {human(facts.swap_total_bytes or 0)}; "
        f"memory {human(facts.memory_total_bytes)}; kernel {facts.kernel}"
    )
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
