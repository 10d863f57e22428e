"""The Docker runner: one experiment on a Docker engine through its SDK, always cleaned up.

The engine may be remote (``DOCKER_HOST``): :meth:`DockerRunner.info` asks the engine and a probe
container about the kernel the containers run on, and the cgroup is sampled only when that
kernel is this one.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from oomlab.rules.results import RunResult, RuntimeInfo
from oomlab.rules.workload import DEFAULT_IMAGE
from oomlab.runners.base import (
    RUN_LABEL,
    ContainerRun,
    EngineError,
    EngineUnavailable,
    PeakSampler,
    container_result,
)
from oomlab.runners.info import (
    PROBE_SCRIPT,
    Probe,
    cgroup_peak_files,
    docker_info,
    parse_probe,
)

PROBE_MEMORY = "64m"
PROBE_TIMEOUT_S = 120.0
"""The probe reads a few files; under emulation (an engine in a TCG guest) that takes seconds."""

HARDENING: dict[str, Any] = {
    "network_mode": "none",
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}


def docker_client(base_url: str | None = None) -> Any:
    """A connected client: ``DOCKER_HOST`` (or the local socket), or ``base_url`` when given."""
    import docker

    try:
        if base_url is None:
            client = docker.from_env(timeout=30)
        else:
            client = docker.DockerClient(base_url=base_url, timeout=30)
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types here
        where = f"at {base_url}" if base_url else "answers"
        raise EngineUnavailable(
            f"no Docker engine {where} ({exc.__class__.__name__}); start one with "
            "hack/docker-up.sh or set DOCKER_HOST"
        ) from None
    return client


def local_runtime_version(runtime: str) -> str | None:
    """``crun --version`` and friends on this machine: the first line's last word."""
    path = shutil.which(runtime)
    if path is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5)
        first = proc.stdout.strip().splitlines()[:1]
        return first[0].split()[-1] if first else None
    return None


@contextlib.contextmanager
def removing(client: Any, label: str) -> Iterator[None]:
    """Force-removes every container labelled ``RUN_LABEL=label`` on the way out, however the
    block ends (Ctrl-C included): by label, so even a container whose create was interrupted
    before it returned goes too."""
    import docker

    try:
        yield
    finally:
        with contextlib.suppress(docker.errors.DockerException):
            for container in client.containers.list(
                all=True, filters={"label": f"{RUN_LABEL}={label}"}
            ):
                with contextlib.suppress(docker.errors.APIError, docker.errors.NotFound):
                    container.remove(force=True)


class DockerRunner:
    """Runs :class:`ContainerRun` experiments on one Docker engine."""

    name = "docker"

    def __init__(self, client: Any | None = None, probe_image: str = DEFAULT_IMAGE) -> None:
        self.client = client or docker_client()
        self.probe_image = probe_image
        self._info: RuntimeInfo | None = None
        self._runc_commit: str | None = None

    def info(self) -> RuntimeInfo:
        if self._info is None:
            engine = self.client.info()
            self._runc_commit = (engine.get("RuncCommit") or {}).get("ID")
            self._info = docker_info(engine, self.client.version(), self._probe())
        return self._info

    def _probe(self) -> Probe | None:
        """What the probe container read on the engine's host; None when it could not run.

        Created, started and waited for here rather than by ``containers.run(remove=True)``,
        so that Ctrl-C or a timeout while it runs still removes it.
        """

        label = f"probe-{uuid.uuid4().hex}"
        try:
            with removing(self.client, label):
                container = self.client.containers.create(
                    self.probe_image,
                    entrypoint=["python3", "-c", PROBE_SCRIPT],
                    command=[],
                    labels={RUN_LABEL: label},
                    mem_limit=PROBE_MEMORY,
                    **HARDENING,
                )
                container.start()
                status = container.wait(timeout=PROBE_TIMEOUT_S)
                output = container.logs(stdout=True, stderr=False)
        except Exception:  # an engine error or requests' ReadTimeout, via the SDK
            return None
        if status.get("StatusCode") != 0:
            return None
        return parse_probe(output.decode(errors="replace"))

    def runtime_info(self, runtime: str) -> RuntimeInfo:
        """:meth:`info` for one OCI runtime, with its version where it can be known."""
        info = self.info()
        version = self._runc_commit if runtime == "runc" else None
        if version is None and info.local:
            version = local_runtime_version(runtime)
        return replace(info, runtime=runtime, runtime_version=version)

    def run(self, experiment: ContainerRun) -> RunResult:
        """Run the experiment on the engine and wait for its end (or its timeout)."""
        import docker

        run = experiment
        host = self.runtime_info(run.runtime)
        kwargs: dict[str, Any] = {
            "command": run.workload.args(),
            "environment": {"PYTHONUNBUFFERED": "1"},
            "labels": {RUN_LABEL: uuid.uuid4().hex},
            "runtime": run.runtime,
            "detach": True,
            **HARDENING,
        }
        if run.memory_bytes is not None:
            kwargs["mem_limit"] = run.memory_bytes
        if run.memory_swap_bytes is not None:
            kwargs["memswap_limit"] = run.memory_swap_bytes
        timed_out = False
        error = ""
        with removing(self.client, kwargs["labels"][RUN_LABEL]):
            try:
                container = self.client.containers.create(run.image, **kwargs)
            except docker.errors.ImageNotFound:
                raise EngineUnavailable(
                    f"image {run.image} is not on this engine: run hack/images.sh"
                ) from None
            except docker.errors.APIError as exc:
                raise EngineError(
                    f"Docker refused the container: {exc.explanation or exc}"
                ) from None
            started = time.monotonic()
            with PeakSampler(cgroup_peak_files(container.id, host)) as sampler:
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
        oom_killed = state.get("OOMKilled")
        return container_result(
            "docker",
            run,
            host,
            exit_code=state.get("ExitCode"),
            oom_killed=oom_killed,
            oom_reported_by="Docker reported State.OOMKilled" if oom_killed else None,
            error=error,
            timed_out=timed_out,
            logs=logs,
            peak=sampler.peak,
            duration=duration,
        )
