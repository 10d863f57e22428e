"""The podman runner: the same experiment through the podman CLI (rootful), on this machine or,
with ``--remote --url``, on a podman API service elsewhere (``podman@vm``: a cgroup v2 guest).

The image is copied over from the Docker engine when podman lacks it. podman 4.3 reports
``State.OOMKilled=false`` for a kernel OOM kill; its conmon leaves an ``oom`` marker in the working
directory of ``podman start`` instead, so each local run starts from a scratch directory and reads
it. A remote conmon leaves that marker on the other machine, so a remote run asks the engine's
kernel instead: a probe container reads the OOM-kill count of the containers' parent cgroup
(``memory.events`` ``oom_kill``, hierarchical on cgroup v2) before and after the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from oomlab.rules.classify import EXIT_SIGKILL
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
from oomlab.runners.docker import PROBE_MEMORY, local_runtime_version
from oomlab.runners.info import (
    PROBE_READ,
    PROBE_SCRIPT,
    Probe,
    cgroup_peak_files,
    parse_probe,
    podman_info,
    probe_literal,
)

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

OOM_EVIDENCE_SCRIPT = (
    PROBE_READ
    + """
own = ""
for line in (read("/proc/self/cgroup") or "").splitlines():
    if line.startswith("0::"):
        own = line[3:].strip()
parts = [p for p in own.split("/") if p]
events = {}
for i in range(1, len(parts)):
    path = "/" + "/".join(parts[:i])
    events[path] = read("/sys/fs/cgroup" + path + "/memory.events")
print(repr({"own": own, "events": events, "vmstat": read("/proc/vmstat")}))
"""
)
"""Run by ``python3 -c`` in a container with the host's cgroup namespace (so its read-only
/sys/fs/cgroup is the whole tree): its own cgroup path, the ``memory.events`` of each ancestor,
and the kernel's ``/proc/vmstat``. The workload's container has the same parent cgroup."""


def podman_urls(address: str) -> dict[str | None, str]:
    """A podman engine's address: one ``podman --url`` value (``tcp://127.0.0.1:23751``: every
    runtime through that service) or one per OCI runtime (``crun=tcp://...,runc=tcp://...``): a
    podman service runs each container with its own default runtime, podman-remote has no
    ``--runtime`` and podman 4.3's APIs ignore a per-container one. The first URL is the key None
    too (info, probes, images)."""
    urls: dict[str | None, str] = {}
    for part in (p.strip() for p in address.split(",")):
        runtime, equals, url = part.partition("=")
        if not equals:
            runtime, url = "", part
        if "://" not in url or (equals and not runtime):
            raise EngineError(
                f"podman address {address!r}: expected URL or RUNTIME=URL[,RUNTIME=URL...]"
            )
        urls.setdefault(None, url)
        if runtime:
            urls[runtime] = url
    if not urls:
        raise EngineError("empty podman address")
    return urls


def podman_command(url: str | None, *args: str) -> list[str]:
    """The podman command line, against a remote API service when ``url`` is given."""
    return ["podman", *(["--remote", "--url", url] if url else []), *args]


def _podman(
    *args: str, timeout: float = 60, cwd: str = _PODMAN_CWD, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        podman_command(url, *args),
        capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd,
    )  # fmt: skip


@dataclass(frozen=True)
class OomCounts:
    """OOM kills the engine's kernel has counted, as the evidence probe read them."""

    cgroup: str | None
    """The containers' parent cgroup (``/machine.slice`` under systemd), or None."""
    cgroup_oom_kills: int | None
    """Its ``memory.events`` ``oom_kill``: every OOM kill in a container below it."""
    kernel_oom_kills: int | None
    """``/proc/vmstat`` ``oom_kill``: every OOM kill on that kernel."""


def _counter(text: str | None, name: str) -> int | None:
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == name and value.strip().isdigit():
            return int(value)
    return None


def containers_parent(own: str, events: Mapping[str, str | None]) -> str | None:
    """The ancestor of the probe's own cgroup whose OOM count covers podman's containers: the
    deepest ``.slice`` (systemd puts each container in a scope of ``machine.slice``), else the
    deepest ancestor with ``memory.events``."""
    readable = [path for path, text in events.items() if text is not None and own.startswith(path)]
    slices = [path for path in readable if path.endswith(".slice")]
    candidates = slices or readable
    return max(candidates, key=len) if candidates else None


def parse_oom_counts(output: str) -> OomCounts | None:
    """The evidence probe's line (a Python dict literal); None when the probe failed."""
    data = probe_literal(output)
    if data is None:
        return None
    events = data.get("events") or {}
    parent = containers_parent(str(data.get("own") or ""), events)
    return OomCounts(
        cgroup=parent,
        cgroup_oom_kills=_counter(events.get(parent), "oom_kill") if parent else None,
        kernel_oom_kills=_counter(data.get("vmstat"), "oom_kill"),
    )


def remote_oom_evidence(
    exit_code: int | None, before: OomCounts | None, after: OomCounts | None
) -> str | None:
    """Who says a remote podman container was OOM-killed, when podman itself does not: an exit
    137 while the OOM-kill count of the containers' cgroup rose (the kernel's own count only
    when the cgroup's could not be read). None: no evidence of an OOM kill. No parentheses in
    the sentence: the report quotes it from inside the reason's own."""
    if exit_code != EXIT_SIGKILL or before is None or after is None:
        return None
    if (
        before.cgroup is not None
        and before.cgroup == after.cgroup
        and before.cgroup_oom_kills is not None
        and after.cgroup_oom_kills is not None
    ):
        if after.cgroup_oom_kills > before.cgroup_oom_kills:
            return (
                "podman's State.OOMKilled is false, but the OOM-kill count of its containers' "
                f"cgroup {after.cgroup} on the engine's kernel, memory.events oom_kill, rose from "
                f"{before.cgroup_oom_kills} to {after.cgroup_oom_kills} during the run"
            )
        return None
    if (
        before.kernel_oom_kills is not None
        and after.kernel_oom_kills is not None
        and after.kernel_oom_kills > before.kernel_oom_kills
    ):
        return (
            "podman's State.OOMKilled is false and its containers' cgroup could not be read, but "
            "the engine kernel's OOM-kill count, /proc/vmstat oom_kill, rose from "
            f"{before.kernel_oom_kills} to {after.kernel_oom_kills} during the run"
        )
    return None


def oci_runtime_version(info: Mapping[str, Any], runtime: str) -> str | None:
    """The version of ``runtime`` when it is the engine's default OCI runtime (``podman info``
    names only that one): the first line's last word of what it printed."""
    oci = (info.get("host") or {}).get("ociRuntime") or {}
    if oci.get("name") != runtime:
        return None
    first = str(oci.get("version") or "").strip().splitlines()[:1]
    return first[0].split()[-1] if first and first[0].split() else None


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


def ensure_podman_image(image: str, url: str | None = None) -> None:
    """Copy ``image`` from the Docker engine into podman's store (at ``url`` when remote) when
    podman lacks it or holds another build of it (a stale copy would run an older workload under
    the same name)."""
    held = _podman("image", "inspect", "--format", "{{.Id}}", image, url=url)
    podman_id = held.stdout.strip().removeprefix("sha256:") if held.returncode == 0 else None
    docker_id = _docker_image_id(image)
    if podman_id is not None and (docker_id is None or docker_id == podman_id):
        return
    if docker_id is None:
        raise EngineUnavailable(
            f"image {image} is not in podman{' at ' + url if url else ''} and not in the host's "
            "Docker engine to copy it from: run hack/images.sh"
        )
    load = " ".join(podman_command(url, "load", "-q"))
    pipeline = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f'docker save "$1" | {load}', "_", image],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if pipeline.returncode != 0:
        raise EngineError(
            f"could not copy {image} from Docker to podman: {pipeline.stderr.strip()}"
        )


class PodmanRunner:
    """Runs :class:`ContainerRun` experiments through the podman CLI; with ``url`` (see
    :func:`podman_urls`: ``tcp://127.0.0.1:23751`` or ``crun=tcp://...,runc=tcp://...``) on
    those remote API services."""

    name = "podman"

    def __init__(self, probe_image: str = DEFAULT_IMAGE, url: str | None = None) -> None:
        if shutil.which("podman") is None:
            raise EngineError("podman is not installed: apt-get install podman")
        self.probe_image = probe_image
        self.urls = podman_urls(url) if url else {}
        self.url = self.urls.get(None)
        self._info: RuntimeInfo | None = None
        self._engines: dict[str, Mapping[str, Any]] = {}

    def _podman(
        self, *args: str, timeout: float = 60, cwd: str = _PODMAN_CWD, url: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return _podman(*args, timeout=timeout, cwd=cwd, url=url or self.url)

    def _engine(self, url: str) -> Mapping[str, Any]:
        """``podman info`` of one remote service, once."""
        if url not in self._engines:
            proc = self._podman("info", "--format", "json", url=url)
            self._engines[url] = json.loads(proc.stdout) if proc.returncode == 0 else {}
        return self._engines[url]

    def _runtime_url(self, runtime: str) -> str | None:
        """The remote service that runs ``runtime`` (None: this machine's podman)."""
        if not self.urls:
            return None
        url = self.urls.get(runtime)
        if url is None and len(self.urls) > 1:
            named = ", ".join(sorted(k for k in self.urls if k))
            raise EngineError(f"podman at {self.url}: no service for runtime {runtime} ({named})")
        return url or self.url

    def info(self) -> RuntimeInfo:
        if self._info is None:
            proc = self._podman("info", "--format", "json")
            if proc.returncode != 0:
                message = _last_line(proc.stderr, "no message")
                if self.url:
                    raise EngineUnavailable(
                        f"no podman API service answers at {self.url} ({message}); start one "
                        "with hack/vm-engine.sh up"
                    )
                raise EngineError(f"podman info failed: {message}")
            engine = json.loads(proc.stdout)
            if self.url:
                self._engines[self.url] = engine
            self._info = podman_info(engine, self._probe())
        return self._info

    def _run_probe(self, script: str, *options: str) -> str | None:
        """``python3 -c script`` in a short container of the workload image; its stdout."""
        # Debian's podman defaults to crun, which refuses hybrid cgroup hosts; runc runs anywhere.
        # A remote engine's runtimes are its own: its default serves.
        runtime = ["--runtime", "runc"] if not self.url and shutil.which("runc") else []
        proc = self._podman(
            "run", "--rm", *HARDENING, *runtime, *options, "--memory", PROBE_MEMORY,
            "--label", f"{RUN_LABEL}=probe-{uuid.uuid4().hex}",
            "--entrypoint", "python3", self.probe_image, "-c", script,
            timeout=180,
        )  # fmt: skip
        return proc.stdout if proc.returncode == 0 else None

    def _probe(self) -> Probe | None:
        try:
            ensure_podman_image(self.probe_image, self.url)
        except EngineError:
            return None
        output = self._run_probe(PROBE_SCRIPT)
        return parse_probe(output) if output is not None else None

    def _oom_counts(self) -> OomCounts | None:
        """The remote kernel's OOM-kill counts (the conmon marker stays on that machine)."""
        if not self.url:
            return None
        output = self._run_probe(OOM_EVIDENCE_SCRIPT, "--cgroupns", "host")
        return parse_oom_counts(output) if output is not None else None

    def run(self, experiment: ContainerRun) -> RunResult:
        run = experiment
        ensure_podman_image(run.image, self.url)
        info = self.info()
        url = self._runtime_url(run.runtime)
        if url is None:
            version = local_runtime_version(run.runtime) if info.local else None
        else:
            version = oci_runtime_version(self._engine(url), run.runtime)
        host = replace(info, runtime=run.runtime, runtime_version=version)
        oom_before = self._oom_counts()
        name = f"oomlab-{uuid.uuid4().hex[:12]}"
        runtime = [] if url else ["--runtime", run.runtime]
        create = [
            "create", "--name", name, *HARDENING, "--env", "PYTHONUNBUFFERED=1",
            *runtime, "--label", f"{RUN_LABEL}={name}", *run.flags(),
            run.image, *run.workload.args(),
        ]  # fmt: skip
        proc = self._podman(*create, url=url)
        if proc.returncode != 0:
            message = _last_line(proc.stderr, "unknown error")
            if "image not known" in message or "no such image" in message.lower():
                raise EngineError(f"image {run.image} is not in podman: run hack/images.sh")
            raise EngineError(f"podman refused the container: {message}")
        started = time.monotonic()
        timed_out = False
        error = ""
        found = self._podman("inspect", "--format", "{{.Id}} {{.OCIRuntime}}", name, url=url)
        container_id, _, oci_runtime = found.stdout.strip().partition(" ")
        if url and oci_runtime != run.runtime:
            self._podman("rm", "--force", name, url=url)
            raise EngineError(
                f"the podman service at {url} runs {oci_runtime or 'an unknown runtime'}, not "
                f"{run.runtime}: name one service per runtime (crun=URL,runc=URL)"
            )
        conmon_dir = tempfile.mkdtemp(prefix="oomlab-conmon-")
        try:
            with PeakSampler(cgroup_peak_files(container_id, host)) as sampler:
                start = self._podman("start", name, cwd=conmon_dir, url=url)
                if start.returncode != 0:
                    error = _last_line(start.stderr, "?")
                else:
                    try:
                        self._podman("wait", name, timeout=run.timeout_s, url=url)
                    except subprocess.TimeoutExpired:
                        timed_out = True
                        self._podman("kill", name, url=url)
                        self._podman("wait", name, url=url)
            duration = time.monotonic() - started
            inspect = json.loads(self._podman("inspect", name, url=url).stdout or "[{}]")[0]
            logs = self._podman("logs", name, url=url).stdout
            conmon_saw_oom = (Path(conmon_dir) / "oom").exists()
        finally:
            self._podman("rm", "--force", name, url=url)
            shutil.rmtree(conmon_dir, ignore_errors=True)
        state = inspect.get("State", {})
        exit_code = state.get("ExitCode")
        if state.get("OOMKilled"):
            reported_by: str | None = "podman reported State.OOMKilled"
        elif conmon_saw_oom:
            reported_by = "podman's State.OOMKilled is false, but its conmon left an OOM marker"
        elif self.url and exit_code == EXIT_SIGKILL and not timed_out:
            reported_by = remote_oom_evidence(exit_code, oom_before, self._oom_counts())
        else:
            reported_by = None
        return container_result(
            "podman",
            run,
            host,
            exit_code=exit_code,
            oom_killed=bool(state.get("OOMKilled") or reported_by),
            oom_reported_by=reported_by,
            error=error,
            timed_out=timed_out,
            logs=logs,
            peak=sampler.peak,
            duration=duration,
        )
