"""A runner's info() describes the kernel its containers run on, and predictions follow it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oomlab.cli.container_runs import docker_prediction
from oomlab.rules.results import CgroupVersion, Predicted, RuntimeInfo
from oomlab.rules.workload import Mode, WorkloadSpec
from oomlab.runners import RUN_LABEL, ContainerRun, DockerRunner
from oomlab.runners import info as info_module
from oomlab.runners.info import (
    cgroup_peak_files,
    docker_info,
    parse_probe,
    podman_info,
)

GiB = 2**30
MiB = 2**20
SEED = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB)
THIS_BOOT = "11111111-2222-3333-4444-555555555555"


def probe_output(*, boot_id: str, swap_kib: int, thp: str = "always [madvise] never\n") -> bytes:
    return repr(
        {
            "meminfo": f"MemTotal:  4007124 kB\nSwapTotal: {swap_kib} kB\n",
            "thp": thp,
            "boot_id": boot_id + "\n",
            "kernel": "6.1.0-27-amd64",
            "cgroup_v2": True,
            "swap_files": True,
        }
    ).encode()


class FakeContainer:
    def __init__(self, containers: FakeContainers, labels: dict[str, str]) -> None:
        self.containers = containers
        self.labels = labels

    def start(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        if self.containers.interrupt_wait:
            raise KeyboardInterrupt
        return {"StatusCode": 0}

    def logs(self, **_: Any) -> bytes:
        return self.containers.output

    def remove(self, force: bool = False) -> None:
        assert force
        self.containers.existing.remove(self)


class FakeContainers:
    """Creates probe containers that print ``output``, and lists them by label as Docker does."""

    def __init__(self, output: bytes) -> None:
        self.output = output
        self.interrupt_wait = False
        self.created: list[dict[str, Any]] = []
        self.existing: list[FakeContainer] = []

    def create(self, image: str, **kwargs: Any) -> FakeContainer:
        self.created.append({"image": image, **kwargs})
        container = FakeContainer(self, kwargs["labels"])
        self.existing.append(container)
        return container

    def list(self, all: bool, filters: dict[str, str]) -> list[FakeContainer]:
        key, _, value = filters["label"].partition("=")
        return [c for c in self.existing if c.labels.get(key) == value]


class FakeClient:
    """An engine in a cgroup v2 VM: its own kernel, memory and swap."""

    def __init__(self, output: bytes, swap_limit: bool = True) -> None:
        self.containers = FakeContainers(output)
        self.swap_limit = swap_limit

    def info(self) -> dict[str, Any]:
        return {"CgroupVersion": "2", "SwapLimit": self.swap_limit,
                "KernelVersion": "6.1.0-27-amd64", "MemTotal": 4_103_299_072,
                "Name": "oomlab-vm", "RuncCommit": {"ID": "v1.1.5"}}  # fmt: skip

    def version(self) -> dict[str, Any]:
        return {"Version": "20.10.24"}


@pytest.fixture(autouse=True)
def this_boot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    boot_id = tmp_path / "boot_id"
    boot_id.write_text(THIS_BOOT + "\n")
    monkeypatch.setattr(info_module, "BOOT_ID", boot_id)


def test_a_remote_engine_is_described_by_its_own_kernel() -> None:
    client = FakeClient(probe_output(boot_id="another-boot", swap_kib=512 * 1024))
    info = DockerRunner(client).info()
    assert info == RuntimeInfo(
        cgroup_version=CgroupVersion.V2, swap_total_bytes=512 * MiB,
        memory_total_bytes=4_103_299_072,
        kernel="6.1.0-27-amd64", engine="docker", engine_version="20.10.24", hostname="oomlab-vm",
        swap_limit_supported=True, transparent_hugepages="madvise", local=False,
    )  # fmt: skip
    (probe,) = client.containers.created
    assert probe["network_mode"] == "none" and probe["read_only"] is True
    assert not client.containers.existing  # removed once read
    assert cgroup_peak_files("abc", info) == []  # its cgroups are not on this machine


def test_the_probe_runs_once_per_runner() -> None:
    client = FakeClient(probe_output(boot_id=THIS_BOOT, swap_kib=0))
    runner = DockerRunner(client)
    assert runner.info().local is True
    assert runner.runtime_info("runc").runtime_version == "v1.1.5"
    assert len(client.containers.created) == 1


def test_ctrl_c_during_the_probe_still_removes_its_container() -> None:
    client = FakeClient(probe_output(boot_id=THIS_BOOT, swap_kib=0))
    client.containers.interrupt_wait = True
    with pytest.raises(KeyboardInterrupt):
        DockerRunner(client).info()
    (probe,) = client.containers.created
    assert probe["labels"][RUN_LABEL].startswith("probe-")
    assert not client.containers.existing


def test_prediction_uses_the_engines_swap_not_this_machines() -> None:
    run = ContainerRun(SEED, "500m", "1g")
    small = DockerRunner(FakeClient(probe_output(boot_id="x", swap_kib=100 * 1024))).info()
    big = DockerRunner(FakeClient(probe_output(boot_id="x", swap_kib=2 * 1024 * 1024))).info()
    assert docker_prediction(run, small)[1].outcome == Predicted.OOM_KILLED
    assert "only 100 MiB of swap" in docker_prediction(run, small)[1].explanation
    assert docker_prediction(run, big)[1].outcome == Predicted.COMPLETED


def test_without_swap_limits_docker_ignores_memory_swap() -> None:
    client = FakeClient(probe_output(boot_id="x", swap_kib=2 * 1024 * 1024), swap_limit=False)
    info = DockerRunner(client).info()
    assert info.swap_limit_supported is False
    _, prediction = docker_prediction(ContainerRun(SEED, "500m", "500m"), info)
    assert prediction.outcome == Predicted.COMPLETED
    assert "no swap accounting" in prediction.explanation


def test_a_failed_probe_leaves_what_only_it_knows_unknown() -> None:
    info = docker_info(FakeClient(b"").info(), {"Version": "20.10"}, None)
    assert info.cgroup_version == CgroupVersion.V2  # the engine's own word
    assert info.swap_total_bytes is None
    assert info.transparent_hugepages is None
    assert info.local is None


def test_podman_info_and_probe() -> None:
    podman = {
        "host": {"cgroupVersion": "v1", "swapTotal": 2 * GiB, "memTotal": 24 * GiB,
                 "kernel": "6.18.44", "hostname": "vm", "serviceIsRemote": False},
        "version": {"Version": "4.3.1"},
    }  # fmt: skip
    probe = parse_probe(probe_output(boot_id=THIS_BOOT, swap_kib=0).decode())
    info = podman_info(podman, probe)
    assert (info.cgroup_version, info.swap_total_bytes, info.engine_version, info.local) == (
        CgroupVersion.V1, 2 * GiB, "4.3.1", True,
    )  # fmt: skip
    assert (
        podman_info(podman | {"host": podman["host"] | {"serviceIsRemote": True}}, None).local
        is False
    )


def test_probe_output_with_noise_before_it() -> None:
    probe = parse_probe("warning: something\n" + probe_output(boot_id="b", swap_kib=1).decode())
    assert probe is not None and probe.swap_total_bytes == 1024
    assert parse_probe("not a literal") is None
    assert parse_probe("__import__('os').system('true')") is None  # a literal, never code
