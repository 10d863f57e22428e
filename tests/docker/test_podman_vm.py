"""podman@vm: podman 4.3 with runc and crun in the cgroup v2 guest of ``hack/vm-engine.sh up``,
reached through its API service (``OOMLAB_ENGINE_PODMAN_VM``). Skips unless that engine answers,
a failure instead under OOMLAB_REQUIRE_VM_ENGINE=1: ``make test-vm-engine`` brings the engine up
and requires it (``make test-docker`` leaves this file out)."""

from __future__ import annotations

import os
import subprocess

import pytest

from oomlab.rules.results import CgroupVersion, Outcome
from oomlab.rules.workload import Mode, WorkloadSpec, swap_limit_from_report
from oomlab.runners import RUN_LABEL, ContainerRun, EngineError, PodmanRunner, container_runner

MiB = 2**20
SEED = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB)
ENGINE = "podman@vm"


@pytest.fixture(scope="module")
def podman_vm() -> PodmanRunner:
    # a skip, or a failure where the engine is required (make test-vm-engine)
    unavailable = pytest.fail if os.environ.get("OOMLAB_REQUIRE_VM_ENGINE") == "1" else pytest.skip
    if not os.environ.get("OOMLAB_ENGINE_PODMAN_VM"):
        unavailable("OOMLAB_ENGINE_PODMAN_VM is not set: make test-vm-engine starts the VM engine")
    try:
        runner = container_runner(ENGINE)
        assert isinstance(runner, PodmanRunner)
        runner.info()
        for runtime in ("runc", "crun"):
            runner._runtime_url(runtime)
    except EngineError as exc:
        unavailable(f"podman@vm does not answer: {exc}")
    return runner


@pytest.fixture(autouse=True)
def no_leftover_containers(podman_vm: PodmanRunner) -> object:
    yield
    assert podman_vm.url is not None
    # The services share one store: any of them lists every container.
    left = subprocess.run(
        ["podman", "--remote", "--url", podman_vm.url, "ps", "-a", "-q",
         "--filter", f"label={RUN_LABEL}"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert not left, f"containers left behind in the guest's podman: {left}"


def test_info_is_the_guests_cgroup_v2_kernel(podman_vm: PodmanRunner) -> None:
    info = podman_vm.info()
    assert info.engine == "podman"
    assert info.cgroup_version == CgroupVersion.V2
    assert info.local is False
    assert info.swap_total_bytes is not None and info.swap_total_bytes > 0
    assert info.transparent_hugepages in ("always", "madvise", "never")


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_seed_without_swap_is_oom_killed_by_evidence(podman_vm: PodmanRunner, runtime: str) -> None:
    result = podman_vm.run(ContainerRun(SEED, "500m", "500m", runtime=runtime, engine=ENGINE))
    assert result.outcome == Outcome.OOM_KILLED, result.reason
    assert result.exit_code == 137
    # podman 4.3 says OOMKilled=false; the guest's cgroup counted the kill
    assert "memory.events oom_kill" in result.reason or "reported State.OOMKilled" in result.reason
    assert swap_limit_from_report(result.progress.cgroup) == 0


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_seed_with_swap_completes_with_memory_swap_minus_memory(
    podman_vm: PodmanRunner, runtime: str
) -> None:
    result = podman_vm.run(
        ContainerRun(SEED, "500m", "1g", runtime=runtime, engine=ENGINE, timeout_s=600)
    )
    assert result.outcome == Outcome.COMPLETED, result.reason
    assert result.exit_code == 0
    assert swap_limit_from_report(result.progress.cgroup) == 1024 * MiB - 500 * MiB
