from __future__ import annotations

import json

import pytest

from oomlab.units import SizeError
from oomlab.workload import (
    INTERPRETER_OVERHEAD_BYTES,
    Mode,
    WorkloadSpec,
    parse_lines,
    swap_limit_from_report,
)

MiB = 2**20


def test_args_round_trip_the_seed() -> None:
    spec = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB)
    assert spec.args() == ["bulk", "--size", "1000Mi", "--chunk", "500Mi"]


def test_from_mapping_reads_the_crd_fields() -> None:
    spec = WorkloadSpec.from_mapping(
        {"mode": "leak", "size": "1Gi", "step": "20Mi", "interval": 0.05, "hold": 2}
    )
    assert spec.args() == [
        "leak",
        "--size",
        "1Gi",
        "--step",
        "20Mi",
        "--interval",
        "0.05",
        "--hold",
        "2",
    ]


@pytest.mark.parametrize(
    ("spec", "peak"),
    [
        (WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB), 1000 * MiB),
        (WorkloadSpec(Mode.STREAMING, 1000 * MiB, 50 * MiB, window=2), 100 * MiB),
        (WorkloadSpec(Mode.STREAMING, 60 * MiB, 50 * MiB, window=4), 60 * MiB),
        (WorkloadSpec(Mode.LEAK, 300 * MiB, step_bytes=20 * MiB), 300 * MiB),
        (WorkloadSpec(Mode.SPIKE, 800 * MiB, base_bytes=100 * MiB), 800 * MiB),
    ],
)
def test_peak_and_demand(spec: WorkloadSpec, peak: int) -> None:
    assert spec.peak_live_bytes() == peak
    assert spec.demand_bytes() == peak + INTERPRETER_OVERHEAD_BYTES


@pytest.mark.parametrize(
    "mapping",
    [
        {"size": "500m"},
        {"mode": "explode"},
        {"size": "0"},
        {"mode": "spike", "size": "1Gi", "base": "2Gi"},
    ],
)
def test_bad_workloads_are_rejected(mapping: dict[str, object]) -> None:
    with pytest.raises(SizeError):
        WorkloadSpec.from_mapping(mapping)


def test_parse_lines_takes_the_last_progress_and_skips_noise() -> None:
    lines = [
        json.dumps({"event": "start", "mode": "bulk", "rss_bytes": 9 * MiB}),
        json.dumps(
            {
                "event": "progress",
                "allocated_bytes": 50 * MiB,
                "processed_bytes": 50 * MiB,
                "rss_bytes": 60 * MiB,
            }
        ),
        "some runtime message",
        json.dumps(
            {
                "event": "progress",
                "allocated_bytes": 450 * MiB,
                "processed_bytes": 450 * MiB,
                "rss_bytes": 460 * MiB,
            }
        ),
        '{"event": "progress", "allocated_by',  # cut by the kill
    ]
    progress = parse_lines(lines)
    assert progress.allocated_bytes == 450 * MiB
    assert progress.peak_rss_bytes == 460 * MiB
    assert progress.summary_status is None
    assert progress.lines == 3


def test_parse_lines_summary_wins() -> None:
    lines = [
        json.dumps(
            {"event": "progress", "allocated_bytes": 100 * MiB, "processed_bytes": 900 * MiB}
        ),
        json.dumps(
            {
                "event": "summary",
                "status": "completed",
                "allocated_bytes": 0,
                "processed_bytes": 1000 * MiB,
                "peak_allocated_bytes": 100 * MiB,
                "peak_rss_bytes": 112 * MiB,
            }
        ),
    ]
    progress = parse_lines(lines)
    assert progress.summary_status == "completed"
    assert progress.processed_bytes == 1000 * MiB
    assert progress.peak_allocated_bytes == 100 * MiB


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        # cgroup v1, kubelet NoSwap: memory+swap equals memory
        ({"version": 1, "memory_limit_bytes": 500 * MiB, "memsw_limit_bytes": 500 * MiB}, 0),
        # cgroup v1, docker --memory=500m --memory-swap=1g
        (
            {"version": 1, "memory_limit_bytes": 500 * MiB, "memsw_limit_bytes": 1024 * MiB},
            524 * MiB,
        ),
        ({"version": 1, "memory_limit_bytes": 500 * MiB, "memsw_limit_bytes": None}, -1),
        # cgroup v2, LimitedSwap share
        ({"version": 2, "memory_limit_bytes": 500 * MiB, "swap_limit_bytes": 64 * MiB}, 64 * MiB),
        ({"version": 2, "memory_limit_bytes": 500 * MiB, "swap_limit_bytes": None}, -1),
        ({"version": 2}, None),
        (None, None),
    ],
)
def test_swap_limit_from_the_workloads_cgroup_report(
    report: dict[str, object] | None, expected: int | None
) -> None:
    assert swap_limit_from_report(report) == expected


def test_parse_lines_keeps_a_timeline_for_plots() -> None:
    lines = [
        json.dumps({"event": "start", "elapsed_s": 0.0, "rss_bytes": 9 * MiB}),
        json.dumps({"event": "progress", "elapsed_s": 0.1, "rss_bytes": 60 * MiB,
                    "allocated_bytes": 50 * MiB}),
        json.dumps({"event": "progress", "elapsed_s": 0.2, "rss_bytes": 110 * MiB,
                    "allocated_bytes": 100 * MiB}),
    ]  # fmt: skip
    timeline = parse_lines(lines).timeline
    assert timeline == (
        (0.0, 9 * MiB, None),
        (0.1, 60 * MiB, 50 * MiB),
        (0.2, 110 * MiB, 100 * MiB),
    )
