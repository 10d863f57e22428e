"""How a container's end, as an engine reports it, becomes an outcome (no engine needed)."""

from __future__ import annotations

import pytest

from oomlab.docker_runner import ContainerRun, classify_exit
from oomlab.results import Outcome
from oomlab.workload import WorkloadSpec

MiB = 2**20


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"exit_code": 137, "oom_killed": True}, Outcome.OOM_KILLED),
        ({"exit_code": 0, "oom_killed": False}, Outcome.COMPLETED),
        (
            {
                "exit_code": 137,
                "oom_killed": False,
                "peak_usage_bytes": 995 * MiB,
                "limit_bytes": 1000 * MiB,
            },
            Outcome.OOM_KILLED,
        ),
        (
            {
                "exit_code": 137,
                "oom_killed": False,
                "peak_usage_bytes": 20 * MiB,
                "limit_bytes": 1000 * MiB,
            },
            Outcome.FAILED,
        ),
        ({"exit_code": 3, "oom_killed": False}, Outcome.FAILED),
        (
            {
                "exit_code": 127,
                "oom_killed": False,
                "error": "cgroups in hybrid mode not supported",
            },
            Outcome.REFUSED,
        ),
        ({"exit_code": None, "oom_killed": None, "timed_out": True}, Outcome.TIMED_OUT),
    ],
)
def test_classify_exit(kwargs: dict[str, object], expected: Outcome) -> None:
    outcome, reason = classify_exit(**kwargs)  # type: ignore[arg-type]
    assert outcome == expected
    assert reason


def test_evidence_is_said_out_loud() -> None:
    _, reason = classify_exit(137, False, peak_usage_bytes=999 * MiB, limit_bytes=1000 * MiB)
    assert "judged by evidence" in reason


def test_container_run_flags() -> None:
    run = ContainerRun(WorkloadSpec(), "500m", None)
    assert run.flags() == ["--memory=500m"]
    assert run.memory_bytes == 500 * MiB
    assert ContainerRun(WorkloadSpec(), "500m", "-1").memory_swap_bytes == -1
