from __future__ import annotations

import json

import pytest

from oomlab.rules.units import SizeError
from oomlab.rules.workload import (
    INTERPRETER_OVERHEAD_BYTES,
    Mode,
    WorkloadSpec,
    parse_lines,
    swap_activity,
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


def test_reaccess_is_an_argument_and_in_the_description() -> None:
    spec = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB, reaccess=3)
    assert spec.args()[-2:] == ["--reaccess", "3"]
    assert spec.describe() == "bulk 1000Mi in 500Mi chunks, 3 re-access passes"
    assert "--reaccess" not in WorkloadSpec(Mode.BULK).args()
    with pytest.raises(SizeError):
        WorkloadSpec(Mode.BULK, reaccess=-1)


def _start(stat: dict[str, int] | None, vmstat: dict[str, int]) -> dict[str, object]:
    return {"event": "start", "elapsed_s": 0.0, "page_size": 4096, "majflt": 0,
            "cgroup": {"version": 1, "stat": stat}, "vmstat": vmstat}  # fmt: skip


def test_swap_activity_v1_counts_system_wide_swap_ins() -> None:
    start = _start({"pgmajfault": 10, "swap": 0}, {"pswpin": 100, "pswpout": 50})
    end = {**_start({"pgmajfault": 1010, "swap": 300 * MiB}, {"pswpin": 356, "pswpout": 1074}),
           "event": "summary", "majflt": 900}  # fmt: skip
    activity = swap_activity(start, end)
    assert activity.swapin_scope == "system"
    assert activity.swapin_bytes == 256 * 4096
    assert activity.swapout_bytes == 1024 * 4096
    assert activity.major_faults == 1000  # the cgroup's, not the process's
    assert activity.swap_bytes_at_end == 300 * MiB


def test_swap_activity_v2_prefers_the_cgroups_own_counters() -> None:
    start = _start({"pswpin": 0, "pswpout": 0, "pgmajfault": 0}, {"pswpin": 5, "pswpout": 5})
    end = {**_start({"pswpin": 10, "pswpout": 20, "pgmajfault": 10}, {"pswpin": 999,
           "pswpout": 999}), "event": "summary"}  # fmt: skip
    activity = swap_activity(start, end)
    assert (activity.swapin_scope, activity.swapin_bytes) == ("cgroup", 10 * 4096)
    assert activity.swapout_bytes == 20 * 4096
    assert activity.swap_bytes_at_end is None  # v2 memory.stat has no "swap" field


def test_swap_activity_without_counters_is_unknown_and_falls_back_to_majflt() -> None:
    start = {"event": "start", "majflt": 3, "cgroup": None, "vmstat": None}
    end = {"event": "summary", "majflt": 8, "cgroup": None, "vmstat": None}
    activity = swap_activity(start, end)
    assert (activity.swapin_scope, activity.swapin_bytes, activity.major_faults) == (
        "unknown", None, 5)  # fmt: skip


def test_parse_lines_reads_timing_and_swap_from_start_and_summary() -> None:
    start = _start({"pgmajfault": 0, "swap": 0}, {"pswpin": 0, "pswpout": 0})
    summary = {**_start({"pgmajfault": 4, "swap": MiB}, {"pswpin": 2, "pswpout": 300}),
               "event": "summary", "status": "completed", "allocate_s": 1.25,
               "reaccess_s": 2.5, "reaccess_passes": 3}  # fmt: skip
    progress = parse_lines([json.dumps(start), "noise", json.dumps(summary)])
    assert (progress.allocate_s, progress.reaccess_s, progress.reaccess_passes) == (1.25, 2.5, 3)
    assert progress.swap is not None
    assert progress.swap.swapin_bytes == 2 * 4096
    assert parse_lines([json.dumps(start)]).swap is None  # killed: no summary, no traffic claim


def test_parse_lines_keeps_the_swap_limit_each_progress_line_read() -> None:
    lines = [
        json.dumps({"event": "start", "elapsed_s": 0.0, "cgroup": {"version": 2}}),
        json.dumps({"event": "progress", "elapsed_s": 1.0, "swap_limit_bytes": 587960320}),
        json.dumps({"event": "progress", "elapsed_s": 2.0}),  # an older memhog, or cgroup v1
        json.dumps({"event": "progress", "elapsed_s": 3.0, "swap_limit_bytes": None}),
    ]
    assert parse_lines(lines).swap_limits == ((1.0, 587960320), (3.0, None))
    assert parse_lines(lines[:1]).swap_limits == ()
