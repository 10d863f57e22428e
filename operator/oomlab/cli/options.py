"""The options the ``oomlab`` commands share, and the workload they describe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oomlab.rules.units import parse_binary_size
from oomlab.rules.workload import Mode, WorkloadSpec

UNSET = "unset"


def split_list(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


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


EngineOpt = Annotated[
    str,
    typer.Option(
        help="docker, podman, or ENGINE@ADDRESS / ENGINE@NAME (docker@vm: $OOMLAB_ENGINE_VM, "
        "podman@vm: $OOMLAB_ENGINE_PODMAN_VM)."
    ),
]
ModeOpt = Annotated[Mode, typer.Option(help="Workload pattern.")]
RuntimeOpt = Annotated[str, typer.Option(help="OCI runtime: runc, crun.")]
RuntimesOpt = Annotated[list[str], typer.Option(help="OCI runtimes.")]
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
