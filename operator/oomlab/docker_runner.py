"""One experiment on a local container engine: Docker through its SDK, podman through its CLI.

Both return the same :class:`RunResult`. The container is always removed: on success, on error,
on timeout and on Ctrl-C. Peak memory(+swap) is sampled from the container's cgroup while it runs
(the cgroup is gone once the container dies).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from oomlab.hostfacts import CGROUP_ROOT, local_host_facts
from oomlab.results import CgroupVersion, HostFacts, Outcome, Progress, RunResult
from oomlab.units import UNLIMITED, human, parse_docker_flags
from oomlab.workload import DEFAULT_IMAGE, WorkloadSpec, parse_lines

RUN_LABEL = "oomlab.dev/run"
EVIDENCE_FRACTION = 0.9
NOFILE_LIMIT = 20000
"""podman asks for more open files than this machine's hard limit by default; ask for this."""
NPROC_LIMIT = 4096
"""podman 4.3 otherwise asks runc for an nproc limit it may not set ("error setting rlimit type
6: operation not permitted")."""


class EngineError(RuntimeError):
    """The engine could not be reached or refused the request; the message says which."""


class EngineUnavailable(EngineError):
    """No run can work: the engine does not answer or lacks the image. Stops a whole matrix."""


@dataclass(frozen=True)
class ContainerRun:
    """Everything needed to run one workload under one set of Docker-style flags."""

    workload: WorkloadSpec
    memory: str | None = "500m"
    memory_swap: str | None = None
    runtime: str = "runc"
    engine: str = "docker"
    image: str = DEFAULT_IMAGE
    timeout_s: float = 180.0

    @property
    def memory_bytes(self) -> int | None:
        return parse_docker_flags(self.memory, None)[0]

    @property
    def memory_swap_bytes(self) -> int | None:
        return parse_docker_flags(None, self.memory_swap)[1]

    def flags(self) -> list[str]:
        flags = []
        if self.memory is not None:
            flags.append(f"--memory={self.memory}")
        if self.memory_swap is not None:
            flags.append(f"--memory-swap={self.memory_swap}")
        return flags


def classify_exit(
    exit_code: int | None,
    oom_killed: bool | None,
    *,
    timed_out: bool = False,
    error: str = "",
    peak_usage_bytes: int | None = None,
    limit_bytes: int | None = None,
) -> tuple[Outcome, str]:
    """A container's end, as the engine reports it, in oomlab's terms with a reason.

    ``error`` is the runtime's message when starting the container failed.
    """
    if timed_out:
        return Outcome.TIMED_OUT, "still running at the timeout, so it was killed"
    if error:
        return Outcome.REFUSED, f"the runtime refused to start it: {error}"
    if oom_killed:
        return Outcome.OOM_KILLED, f"the kernel OOM-killed it (exit {exit_code}, OOMKilled=true)"
    if exit_code == 0:
        return Outcome.COMPLETED, "completed (exit 0)"
    if exit_code == 137:
        if peak_usage_bytes and limit_bytes and peak_usage_bytes >= EVIDENCE_FRACTION * limit_bytes:
            return (
                Outcome.OOM_KILLED,
                f"SIGKILL (exit 137) at {human(peak_usage_bytes)} of a {human(limit_bytes)} "
                "limit; the engine did not report OOMKilled, so judged by evidence",
            )
        return Outcome.FAILED, "SIGKILL (exit 137) without OOMKilled and far from the limit"
    if exit_code == 3:
        return Outcome.FAILED, "the workload hit a MemoryError (exit 3)"
    if exit_code == 2:
        return Outcome.FAILED, "the workload rejected its arguments (exit 2)"
    return Outcome.FAILED, f"exited with code {exit_code}"


class _PeakSampler:
    """Polls a container's cgroup for its memory(+swap) high-water mark until stopped."""

    def __init__(self, paths: list[Path], interval_s: float = 0.05) -> None:
        self.paths = paths
        self.interval_s = interval_s
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in self.paths:
                with contextlib.suppress(OSError, ValueError):
                    value = int(path.read_text().strip())
                    self.peak = max(self.peak or 0, value)
            self._stop.wait(self.interval_s)


def _cgroup_peak_files(container_id: str, cgroup: CgroupVersion) -> list[Path]:
    """Where the cgroupfs driver puts a container's memory high-water marks."""
    if cgroup == CgroupVersion.V1:
        base = CGROUP_ROOT / "memory"
        names: tuple[str, ...] = ("memory.memsw.max_usage_in_bytes", "memory.max_usage_in_bytes")
        dirs = [base / "docker" / container_id, base / "libpod_parent" / f"libpod-{container_id}"]
    else:
        base = CGROUP_ROOT
        names = ("memory.peak",)
        dirs = [
            base / "docker" / container_id,
            base / "system.slice" / f"docker-{container_id}.scope",
            base / "machine.slice" / f"libpod-{container_id}.scope",
        ]
    return [d / n for d in dirs for n in names]


def docker_client() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types here
        raise EngineUnavailable(
            f"no Docker engine answers ({exc.__class__.__name__}); start one with "
            "hack/docker-up.sh or set DOCKER_HOST"
        ) from None
    return client


def docker_host_facts(client: Any, runtime: str = "runc") -> HostFacts:
    info = client.info()
    version = client.version()
    local = local_host_facts()
    runtime_version = (info.get("RuncCommit") or {}).get("ID") if runtime == "runc" else None
    return replace(
        local,
        cgroup_version={"1": CgroupVersion.V1, "2": CgroupVersion.V2}.get(
            str(info.get("CgroupVersion")), local.cgroup_version
        ),
        memory_total_bytes=info.get("MemTotal") or local.memory_total_bytes,
        engine="docker",
        engine_version=version.get("Version"),
        runtime=runtime,
        runtime_version=runtime_version or _runtime_version(runtime),
    )


def _runtime_version(runtime: str) -> str | None:
    """``crun --version`` and friends: the first line's last word."""
    path = shutil.which(runtime)
    if path is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
        first = proc.stdout.strip().splitlines()[:1]
        return first[0].split()[-1] if first else None
    return None


def run_docker(run: ContainerRun, client: Any | None = None) -> RunResult:
    """Run ``run`` on the Docker engine and wait for its end (or its timeout)."""
    import docker

    client = client or docker_client()
    host = docker_host_facts(client, run.runtime)
    kwargs: dict[str, Any] = {
        "command": run.workload.args(),
        "environment": {"PYTHONUNBUFFERED": "1"},
        "network_mode": "none",
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "labels": {RUN_LABEL: uuid.uuid4().hex},
        "runtime": run.runtime,
        "detach": True,
    }
    if run.memory_bytes is not None:
        kwargs["mem_limit"] = run.memory_bytes
    if run.memory_swap_bytes is not None:
        kwargs["memswap_limit"] = run.memory_swap_bytes
    try:
        container = client.containers.create(run.image, **kwargs)
    except docker.errors.ImageNotFound:
        raise EngineUnavailable(
            f"image {run.image} is not on this engine: run hack/images.sh"
        ) from None
    except docker.errors.APIError as exc:
        raise EngineError(f"Docker refused the container: {exc.explanation or exc}") from None
    started = time.monotonic()
    timed_out = False
    error = ""
    samples = _cgroup_peak_files(container.id, host.cgroup_version)
    try:
        with _PeakSampler(samples) as sampler:
            try:
                container.start()
            except docker.errors.APIError as exc:
                error = str(exc.explanation or exc).strip()
            if not error:
                try:
                    container.wait(timeout=run.timeout_s)
                except Exception:  # requests' ReadTimeout, via the SDK
                    timed_out = True
                    with contextlib.suppress(docker.errors.APIError):
                        container.kill()
                    container.wait(timeout=30)
        duration = time.monotonic() - started
        container.reload()
        state = container.attrs.get("State", {})
        logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
    finally:
        with contextlib.suppress(docker.errors.APIError, docker.errors.NotFound):
            container.remove(force=True)
    return _result(
        "docker",
        run,
        host,
        exit_code=state.get("ExitCode"),
        oom_killed=state.get("OOMKilled"),
        error=error,
        timed_out=timed_out,
        logs=logs,
        peak=sampler.peak,
        duration=duration,
    )


def _result(
    runner: str,
    run: ContainerRun,
    host: HostFacts,
    *,
    exit_code: int | None,
    oom_killed: bool | None,
    error: str,
    timed_out: bool,
    logs: str,
    peak: int | None,
    duration: float,
) -> RunResult:
    progress: Progress = parse_lines(logs.splitlines())
    limit = run.memory_bytes
    swap = run.memory_swap_bytes
    memsw_limit = None if limit is None else (None if swap == UNLIMITED else swap or 2 * limit)
    outcome, reason = classify_exit(
        exit_code,
        oom_killed,
        timed_out=timed_out,
        error=error,
        peak_usage_bytes=peak,
        limit_bytes=memsw_limit or limit,
    )
    tail = "\n".join(line for line in logs.splitlines()[-5:])
    return RunResult(
        runner=runner,
        outcome=outcome,
        reason=reason,
        exit_code=exit_code,
        oom_killed=oom_killed,
        progress=progress,
        peak_usage_bytes=peak,
        duration_s=round(duration, 3),
        host=host,
        runtime=run.runtime,
        log_tail=tail,
    )


_PODMAN_CWD = tempfile.gettempdir()
"""podman 4.3's conmon drops an ``oom`` marker file in its working directory when the kernel
kills the container; run it from the temp directory, never from the user's."""


def _podman(
    *args: str, timeout: float = 60, cwd: str = _PODMAN_CWD
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd
    )


def podman_host_facts() -> HostFacts:
    local = local_host_facts()
    proc = _podman("version", "--format", "{{.Client.Version}}")
    return replace(local, engine="podman", engine_version=proc.stdout.strip() or None)


def ensure_podman_image(image: str) -> None:
    """Copy ``image`` from the Docker engine into podman's store when podman lacks it."""
    if _podman("image", "exists", image).returncode == 0:
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


def run_podman(run: ContainerRun) -> RunResult:
    """The same run through the podman CLI (rootful); the image is copied over from Docker."""
    if shutil.which("podman") is None:
        raise EngineError("podman is not installed: apt-get install podman")
    ensure_podman_image(run.image)
    host = replace(
        podman_host_facts(), runtime=run.runtime, runtime_version=_runtime_version(run.runtime)
    )
    name = f"oomlab-{uuid.uuid4().hex[:12]}"
    create = [
        "create", "--name", name, "--network", "none", "--read-only", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--env", "PYTHONUNBUFFERED=1",
        "--ulimit", f"nofile={NOFILE_LIMIT}:{NOFILE_LIMIT}",
        "--ulimit", f"nproc={NPROC_LIMIT}:{NPROC_LIMIT}", "--runtime", run.runtime,
        "--label", f"{RUN_LABEL}={name}", *run.flags(), run.image, *run.workload.args(),
    ]  # fmt: skip
    proc = _podman(*create)
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unknown error"
        if "image not known" in message or "no such image" in message.lower():
            raise EngineError(f"image {run.image} is not in podman: run hack/images.sh")
        raise EngineError(f"podman refused the container: {message}")
    started = time.monotonic()
    timed_out = False
    error = ""
    container_id = _podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
    # conmon starts in `podman start`'s working directory and leaves its OOM marker there.
    conmon_dir = tempfile.mkdtemp(prefix="oomlab-conmon-")
    try:
        with _PeakSampler(_cgroup_peak_files(container_id, host.cgroup_version)) as sampler:
            start = _podman("start", name, cwd=conmon_dir)
            if start.returncode != 0:
                error = start.stderr.strip().splitlines()[-1] if start.stderr.strip() else "?"
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
    result = _result(
        "podman",
        run,
        host,
        exit_code=state.get("ExitCode"),
        oom_killed=state.get("OOMKilled") or conmon_saw_oom,
        error=error,
        timed_out=timed_out,
        logs=logs,
        peak=sampler.peak,
        duration=duration,
    )
    if conmon_saw_oom and not state.get("OOMKilled"):
        result = replace(
            result,
            reason=f"the kernel OOM-killed it (exit {result.exit_code}); podman's State.OOMKilled "
            "is false, but its conmon left an OOM marker",
        )
    return result


def run_container(run: ContainerRun, docker: Any | None = None) -> RunResult:
    if run.engine == "podman":
        return run_podman(run)
    if run.engine == "docker":
        return run_docker(run, docker)
    raise EngineError(f"unknown engine {run.engine!r}: use docker or podman")


@contextlib.contextmanager
def cleanup_leftovers(client: Any) -> Iterator[None]:
    """Remove any container this kit labelled, even after a hard interrupt between runs."""
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
                container.remove(force=True)
