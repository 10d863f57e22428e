"""How a container's end, as an engine reports it, becomes a result (no engine needed)."""

from __future__ import annotations

import pytest

from oomlab.rules.results import CgroupVersion, Outcome, RuntimeInfo
from oomlab.rules.workload import WorkloadSpec
from oomlab.runners import ContainerRun
from oomlab.runners.base import container_result, evidence_limit

MiB = 2**20
V1 = RuntimeInfo(cgroup_version=CgroupVersion.V1, swap_limit_supported=True, local=True)
V2 = RuntimeInfo(cgroup_version=CgroupVersion.V2, swap_limit_supported=True, local=True)
RUN = ContainerRun(WorkloadSpec(), "500m", "1g")


def _result(run: ContainerRun = RUN, info: RuntimeInfo = V1, **kwargs: object) -> object:
    ends: dict[str, object] = {
        "exit_code": 0, "oom_killed": False, "oom_reported_by": None, "error": "",
        "timed_out": False, "logs": "", "peak": None, "duration": 1.0,
    }  # fmt: skip
    ends.update(kwargs)
    return container_result("docker", run, info, **ends)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ends", "outcome", "needle"),
    [
        ({"exit_code": 137, "oom_killed": True, "oom_reported_by": "Docker reported it"},
         Outcome.OOM_KILLED, "Docker reported it"),
        ({"exit_code": 0}, Outcome.COMPLETED, "completed"),
        ({"exit_code": 137, "peak": 1000 * MiB}, Outcome.OOM_KILLED, "judged by evidence"),
        ({"exit_code": 137, "peak": 20 * MiB}, Outcome.FAILED, "something else killed it"),
        ({"exit_code": 3}, Outcome.FAILED, "MemoryError"),
        ({"exit_code": 2}, Outcome.FAILED, "rejected its arguments"),
        ({"exit_code": 127, "error": "cgroups in hybrid mode not supported"}, Outcome.REFUSED,
         "hybrid mode"),
        ({"exit_code": None, "timed_out": True}, Outcome.TIMED_OUT, "timeout"),
    ],
)  # fmt: skip
def test_container_ends(ends: dict[str, object], outcome: Outcome, needle: str) -> None:
    result = _result(**ends)
    assert result.outcome == outcome  # type: ignore[attr-defined]
    assert needle in result.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("memory_swap", "info", "limit"),
    [
        ("1g", V1, 1024 * MiB),  # v1: the sampler reads memory+swap
        (None, V1, 1000 * MiB),  # unset: semantics' 2 x memory
        ("-1", V1, 500 * MiB),
        ("1g", V2, 500 * MiB),  # v2: memory.peak is memory alone
        ("1g", RuntimeInfo(cgroup_version=CgroupVersion.V1, swap_limit_supported=False),
         500 * MiB),  # no swap accounting: Docker ignores --memory-swap
    ],
)  # fmt: skip
def test_evidence_limit_follows_the_engines_host(
    memory_swap: str | None, info: RuntimeInfo, limit: int
) -> None:
    assert evidence_limit(ContainerRun(WorkloadSpec(), "500m", memory_swap), info) == limit


def test_result_carries_the_runtimes_host() -> None:
    remote = RuntimeInfo(cgroup_version=CgroupVersion.V2, kernel="6.1.0-vm", local=False)
    result = _result(info=remote)
    assert result.host.kernel == "6.1.0-vm"  # type: ignore[attr-defined]
    assert result.to_dict()["host"]["local"] is False  # type: ignore[attr-defined]


def test_container_run_flags() -> None:
    run = ContainerRun(WorkloadSpec(), "500m", None)
    assert run.flags() == ["--memory=500m"]
    assert run.memory_bytes == 500 * MiB
    assert ContainerRun(WorkloadSpec(), "500m", "-1").memory_swap_bytes == -1
