"""The engines' info() on this machine: a local engine, so its host is this kernel."""

from __future__ import annotations

import platform

from oomlab.runners import DockerRunner, PodmanRunner
from oomlab.runners.info import this_machine


def test_docker_info_is_this_kernel_read_through_the_engine(docker_runner: DockerRunner) -> None:
    info = docker_runner.info()
    here = this_machine()
    assert info.local is True  # the probe saw this boot
    assert info.kernel == platform.release()
    assert info.cgroup_version == here.cgroup_version
    assert info.swap_total_bytes == here.swap_total_bytes  # read by the probe, in a container
    assert info.swap_limit_supported is True  # make setup's engine has swap accounting
    assert info.transparent_hugepages is not None
    assert info.transparent_hugepages == here.transparent_hugepages


def test_podman_info_agrees_with_docker(docker_runner: DockerRunner, podman_ready: None) -> None:
    podman = PodmanRunner().info()
    docker = docker_runner.info()
    assert podman.engine == "podman" and podman.local is True
    for field in ("cgroup_version", "swap_total_bytes", "kernel", "transparent_hugepages"):
        assert getattr(podman, field) == getattr(docker, field), field
    assert podman.swap_limit_supported is True
