"""What the ``oomlab`` commands print: the rows' table, the progress bar, the JSON, the charts."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oomlab.cli.container_runs import Row, describe_host, execute, row_bar, row_timeline
from oomlab.cli.plot import plot_bars, plot_timeline
from oomlab.rules.results import Outcome, Predicted
from oomlab.rules.units import human
from oomlab.runners import ContainerRun

out = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


def sigterm_as_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def outcome_style(value: str | None) -> str:
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
            observed = outcome_style(result.outcome.value) + agree + code
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
            outcome_style(row.prediction.outcome.value if row.prediction else None),
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
    signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    if quiet or len(runs) == 1:
        return execute(runs)
    with progress_bar(len(runs), "experiments") as (advance, _):
        return execute(runs, advance)


def show_rows(
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
        plot_bars([row_bar(row) for row in rows], plot)
        err.print(f"wrote {plot}")
    if timeline is not None:
        timelines = [row_timeline(row) for row in rows]
        plot_timeline([t for t in timelines if t is not None], timeline)
        err.print(f"wrote {timeline}")
    if any(row.agrees is False for row in rows):
        err.print("[bold red]some observations differ from the prediction[/] (marked ✗)")
