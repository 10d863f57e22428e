"""The engines' info() on this machine: a local engine, so its host is this kernel."""

from __future__ import annotations

import io
import os
import platform
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from oomlab.rules.workload import DEFAULT_IMAGE
from oomlab.runners import RUN_LABEL, DockerRunner, PodmanRunner
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


@pytest.fixture
def stalling_probe_image(client: Any) -> Iterator[str]:
    """The workload image with a ``python3`` that never finishes: the info() probe, which runs
    ``python3 -c``, stays up until it is removed, so a test can interrupt it while it runs."""
    tag = f"oomlab/test-stalling-probe:{uuid.uuid4().hex[:12]}"
    stall = b"#!/bin/sh\nexec sleep 600\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (
            ("Dockerfile", f"FROM {DEFAULT_IMAGE}\nCOPY python3 /usr/local/bin/python3\n".encode()),
            ("python3", stall),
        ):
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode = len(data), 0o755
            tar.addfile(entry, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True)
    yield tag
    client.images.remove(tag, force=True)


def test_ctrl_c_during_the_info_probe_exits_130_and_removes_it(
    client: Any, stalling_probe_image: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "oomlab.cli.main", "host", "--image", stalling_probe_image],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(
            c.labels[RUN_LABEL].startswith("probe-")
            for c in client.containers.list(filters={"label": RUN_LABEL, "status": "running"})
        ):
            assert proc.poll() is None, "oomlab host ended before its probe ran"
            assert time.monotonic() < deadline, "the probe container never started"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGINT)
        try:
            _, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("oomlab host did not exit within 60 s of Ctrl-C") from None
        assert proc.returncode == 130
        assert "Traceback" not in stderr
        left = client.containers.list(all=True, filters={"label": RUN_LABEL})
        assert not left, f"left behind: {[c.labels[RUN_LABEL] for c in left]}"
    finally:
        proc.kill()
        proc.wait()
        for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
            container.remove(force=True)
