"""The podman runner: the same experiment through the podman CLI (rootful).

The image is copied over from the Docker engine when podman lacks it. podman 4.3 reports
``State.OOMKilled=false`` for a kernel OOM kill; its conmon leaves an ``oom`` marker in the working
directory of ``podman start`` instead, so each run starts from a scratch directory and reads it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

from oomlab.results import RunResult, RuntimeInfo
from oomlab.runners.base import RUN_LABEL, ContainerRun, EngineError, PeakSampler, container_result
from oomlab.runners.docker import PROBE_MEMORY, local_runtime_version
from oomlab.runners.info import PROBE_SCRIPT, Probe, cgroup_peak_files, parse_probe, podman_info
from oomlab.workload import DEFAULT_IMAGE

NOFILE_LIMIT = 20000
"""podman asks for more open files than this machine's hard limit by default; ask for this."""
NPROC_LIMIT = 4096
"""podman 4.3 otherwise asks runc for an nproc limit it may not set ("error setting rlimit type
6: operation not permitted")."""

HARDENING = [
    "--network", "none", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    "--ulimit", f"nofile={NOFILE_LIMIT}:{NOFILE_LIMIT}",
    "--ulimit", f"nproc={NPROC_LIMIT}:{NPROC_LIMIT}",
]  # fmt: skip

_PODMAN_CWD = tempfile.gettempdir()
"""conmon drops its ``oom`` marker in its working directory: never run podman from the user's."""


def _podman(
    *args: str, timeout: float = 60, cwd: str = _PODMAN_CWD
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )


def _last_line(stderr: str, default: str) -> str:
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else default


def _docker_image_id(image: str) -> str | None:
    if shutil.which("docker") is None:
        return None
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return None
    return proc.stdout.strip().removeprefix("sha256:") or None


def ensure_podman_image(image: str) -> None:
    """Copy ``image`` from the Docker engine into podman's store when podman lacks it or holds
    another build of it (a stale copy would run an older workload under the same name)."""
    held = _podman("image", "inspect", "--format", "{{.Id}}", image)
    podman_id = held.stdout.strip().removeprefix("sha256:") if held.returncode == 0 else None
    docker_id = _docker_image_id(image)
    if podman_id is not None and (docker_id is None or docker_id == podman_id):
        return
    if shutil.which("docker") is None:
        raise EngineError(f"image {image} is not in podman and there is no docker to copy it from")
    pipeline = subprocess.run(
        ["bash", "-o", "pipefail", "-c", 'docker save "$1" | podman load -q', "_", image],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if pipeline.returncode != 0:
        raise EngineError(
            f"could not copy {image} from Docker to podman: {pipeline.stderr.strip()}"
        )


class PodmanRunner:
    """Runs :class:`ContainerRun` experiments through the podman CLI."""

    name = "podman"

    def __init__(self, probe_image: str = DEFAULT_IMAGE) -> None:
        if shutil.which("podman") is None:
            raise EngineError("podman is not installed: apt-get install podman")
        self.probe_image = probe_image
        self._info: RuntimeInfo | None = None

    def info(self) -> RuntimeInfo:
        if self._info is None:
            proc = _podman("info", "--format", "json")
            if proc.returncode != 0:
                raise EngineError(f"podman info failed: {_last_line(proc.stderr, 'no message')}")
            self._info = podman_info(json.loads(proc.stdout), self._probe())
        return self._info

    def _probe(self) -> Probe | None:
        try:
            ensure_podman_image(self.probe_image)
        except EngineError:
            return None
        # Debian's podman defaults to crun, which refuses hybrid cgroup hosts; runc runs anywhere.
        runtime = ["--runtime", "runc"] if shutil.which("runc") else []
        proc = _podman(
            "run", "--rm", *HARDENING, *runtime, "--memory", PROBE_MEMORY,
            "--label", f"{RUN_LABEL}=probe-{uuid.uuid4().hex}",
            "--entrypoint", "python3", self.probe_image, "-c", PROBE_SCRIPT,
        )  # fmt: skip
        return parse_probe(proc.stdout) if proc.returncode == 0 else None

    def run(self, experiment: ContainerRun) -> RunResult:
        run = experiment
        ensure_podman_image(run.image)
        info = self.info()
        version = local_runtime_version(run.runtime) if info.local else None
        host = replace(info, runtime=run.runtime, runtime_version=version)
        name = f"oomlab-{uuid.uuid4().hex[:12]}"
        create = [
            "create", "--name", name, *HARDENING, "--env", "PYTHONUNBUFFERED=1",
            "--runtime", run.runtime, "--label", f"{RUN_LABEL}={name}", *run.flags(),
            run.image, *run.workload.args(),
        ]  # fmt: skip
        proc = _podman(*create)
        if proc.returncode != 0:
            message = _last_line(proc.stderr, "unknown error")
            if "image not known" in message or "no such image" in message.lower():
                raise EngineError(f"image {run.image} is not in podman: run hack/images.sh")
            raise EngineError(f"podman refused the container: {message}")
        started = time.monotonic()
        timed_out = False
        error = ""
        container_id = _podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
        conmon_dir = tempfile.mkdtemp(prefix="oomlab-conmon-")
        try:
            with PeakSampler(cgroup_peak_files(container_id, host)) as sampler:
                start = _podman("start", name, cwd=conmon_dir)
                if start.returncode != 0:
                    error = _last_line(start.stderr, "?")
                else:
                    try:
                        _podman("wait", name, timeout=run.timeout_s)
                    except subprocess.TimeoutExpired:
                        timed_out = True
                        _podman("kill", name)
                        _podman("wait", name)
            duration = time.monotonic() - started
            inspect = json.loads(_podman("inspect", name).stdout or "[{}]")[0]
            logs = _podman("logs", name).stdout
            conmon_saw_oom = (Path(conmon_dir) / "oom").exists()
        finally:
            _podman("rm", "--force", name)
            shutil.rmtree(conmon_dir, ignore_errors=True)
        state = inspect.get("State", {})
        if state.get("OOMKilled"):
            reported_by: str | None = "podman reported State.OOMKilled"
        elif conmon_saw_oom:
            reported_by = "podman's State.OOMKilled is false, but its conmon left an OOM marker"
        else:
            reported_by = None
        return container_result(
            "podman",
            run,
            host,
            exit_code=state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled") or conmon_saw_oom),
            oom_reported_by=reported_by,
            error=error,
            timed_out=timed_out,
            logs=logs,
            peak=sampler.peak,
            duration=duration,
        )
