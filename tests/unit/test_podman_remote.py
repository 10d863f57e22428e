"""podman@vm: how its address is found, and the OOM evidence rules for a remote podman (its conmon
marker stays in the guest, so the guest kernel's OOM-kill counts decide)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from oomlab.runners import (
    EngineError,
    EngineUnavailable,
    PodmanRunner,
    container_runner,
    engine_address,
)
from oomlab.runners.podman import (
    OOM_EVIDENCE_SCRIPT,
    OomCounts,
    containers_parent,
    oci_runtime_version,
    parse_oom_counts,
    podman_command,
    podman_urls,
    remote_oom_evidence,
)

EVENTS = "low 0\nhigh 0\nmax 41\noom 3\noom_kill {kills}\noom_group_kill 0\n"


def _probe_output(kills: int, vmstat_kills: int = 7) -> str:
    data = {
        "own": "/machine.slice/libpod-0123abcd.scope/container",
        "events": {
            "/machine.slice": EVENTS.format(kills=kills),
            "/machine.slice/libpod-0123abcd.scope": EVENTS.format(kills=0),
        },
        "vmstat": f"nr_free_pages 1234\noom_kill {vmstat_kills}\nswap_ra 5\n",
    }
    return f"some warning line\n{data!r}\n"


def test_podman_at_a_name_reads_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OOMLAB_ENGINE_VM", "tcp://127.0.0.1:23750")
    monkeypatch.setenv("OOMLAB_ENGINE_PODMAN_VM", "tcp://127.0.0.1:23751")
    assert engine_address("docker@vm") == ("docker", "tcp://127.0.0.1:23750")
    assert engine_address("podman@vm") == ("podman", "tcp://127.0.0.1:23751")
    assert engine_address("podman@unix:///run/podman/podman.sock") == (
        "podman",
        "unix:///run/podman/podman.sock",
    )


def test_podman_at_a_name_without_its_variable_says_which_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OOMLAB_ENGINE_VM", "tcp://127.0.0.1:23750")  # docker@vm's is not podman's
    monkeypatch.delenv("OOMLAB_ENGINE_PODMAN_VM", raising=False)
    with pytest.raises(EngineUnavailable, match=r"set OOMLAB_ENGINE_PODMAN_VM .*podman --url"):
        engine_address("podman@vm")


def test_podman_at_vm_is_a_remote_podman_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "OOMLAB_ENGINE_PODMAN_VM", "crun=tcp://127.0.0.1:23751,runc=tcp://127.0.0.1:23752"
    )
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    runner = container_runner("podman@vm")
    assert isinstance(runner, PodmanRunner)
    assert runner.url == "tcp://127.0.0.1:23751"  # info, probes and images: the first service
    assert runner._runtime_url("runc") == "tcp://127.0.0.1:23752"
    assert runner._runtime_url("crun") == "tcp://127.0.0.1:23751"
    with pytest.raises(EngineError, match="no service for runtime youki"):
        runner._runtime_url("youki")
    local = container_runner("podman")
    assert isinstance(local, PodmanRunner) and local.url is None
    assert local._runtime_url("runc") is None  # this machine's podman, --runtime on the CLI


def test_a_podman_address_is_one_url_or_one_per_runtime() -> None:
    assert podman_urls("tcp://127.0.0.1:23751") == {None: "tcp://127.0.0.1:23751"}
    assert podman_urls("crun=tcp://h:1, runc=tcp://h:2") == {
        None: "tcp://h:1",
        "crun": "tcp://h:1",
        "runc": "tcp://h:2",
    }
    for bad in ("127.0.0.1:23751", "=tcp://h:1", "crun=h:1", ""):
        with pytest.raises(EngineError, match="podman address"):
            podman_urls(bad)


def test_podman_command_goes_remote_only_with_a_url() -> None:
    assert podman_command(None, "info") == ["podman", "info"]
    assert podman_command("tcp://127.0.0.1:23751", "load", "-q") == [
        "podman", "--remote", "--url", "tcp://127.0.0.1:23751", "load", "-q",
    ]  # fmt: skip


def test_the_containers_parent_is_the_deepest_slice() -> None:
    events = {"/machine.slice": "oom_kill 1", "/machine.slice/libpod-1.scope": "oom_kill 0"}
    assert containers_parent("/machine.slice/libpod-1.scope/container", events) == "/machine.slice"
    # cgroupfs manager: no slice, the deepest readable ancestor
    plain = {"/libpod_parent": "oom_kill 0", "/libpod_parent/libpod-1": None}
    assert containers_parent("/libpod_parent/libpod-1/x", plain) == "/libpod_parent"
    assert containers_parent("/", {}) is None


def test_parse_oom_counts_reads_the_parent_and_the_kernel() -> None:
    counts = parse_oom_counts(_probe_output(kills=4, vmstat_kills=9))
    assert counts == OomCounts(cgroup="/machine.slice", cgroup_oom_kills=4, kernel_oom_kills=9)
    assert parse_oom_counts("Error: no such image\n") is None


def test_the_evidence_script_runs_and_parses_here() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", OOM_EVIDENCE_SCRIPT], capture_output=True, text=True, check=True
    )
    counts = parse_oom_counts(proc.stdout)
    assert counts is not None
    assert isinstance(counts.kernel_oom_kills, int)  # /proc/vmstat has oom_kill since 4.13


def test_exit_137_with_the_cgroup_count_rising_is_an_oom_kill() -> None:
    before = parse_oom_counts(_probe_output(kills=2))
    after = parse_oom_counts(_probe_output(kills=3))
    said = remote_oom_evidence(137, before, after)
    assert said is not None
    assert "/machine.slice" in said and "from 2 to 3" in said and "memory.events" in said


def test_the_evidence_has_no_parentheses_so_the_report_can_quote_it() -> None:
    # the report finds who reported an OOM kill as the "(exit 137; WHO)" at the reason's end
    cgroup = remote_oom_evidence(
        137, parse_oom_counts(_probe_output(kills=2)), parse_oom_counts(_probe_output(kills=3))
    )
    kernel = remote_oom_evidence(
        137,
        OomCounts(cgroup=None, cgroup_oom_kills=None, kernel_oom_kills=1),
        OomCounts(cgroup=None, cgroup_oom_kills=None, kernel_oom_kills=2),
    )
    for said in (cgroup, kernel):
        assert said is not None and "(" not in said and ")" not in said


def test_no_rise_or_no_sigkill_is_no_evidence() -> None:
    same = parse_oom_counts(_probe_output(kills=2))
    rose = parse_oom_counts(_probe_output(kills=3))
    assert remote_oom_evidence(137, same, same) is None
    assert remote_oom_evidence(0, same, rose) is None
    assert remote_oom_evidence(1, same, rose) is None
    assert remote_oom_evidence(137, None, rose) is None
    assert remote_oom_evidence(137, same, None) is None


def test_a_kill_elsewhere_on_the_kernel_is_not_this_containers() -> None:
    before = parse_oom_counts(_probe_output(kills=2, vmstat_kills=5))
    after = parse_oom_counts(_probe_output(kills=2, vmstat_kills=6))
    assert remote_oom_evidence(137, before, after) is None


def test_the_kernel_count_decides_only_when_the_cgroup_cannot_be_read() -> None:
    before = OomCounts(cgroup=None, cgroup_oom_kills=None, kernel_oom_kills=5)
    after = OomCounts(cgroup=None, cgroup_oom_kills=None, kernel_oom_kills=6)
    said = remote_oom_evidence(137, before, after)
    assert said is not None and "/proc/vmstat" in said and "from 5 to 6" in said
    assert remote_oom_evidence(137, before, before) is None


def test_runtime_version_only_for_the_engines_default_runtime() -> None:
    info = {"host": {"ociRuntime": {"name": "crun", "version": "crun version 1.8.1\ncommit: x"}}}
    assert oci_runtime_version(info, "crun") == "1.8.1"
    assert oci_runtime_version(info, "runc") is None
    assert oci_runtime_version({}, "crun") is None
