"""Facts about the kernel a runtime runs its containers on.

A runtime's host is not necessarily this machine: ``DOCKER_HOST`` may point over ssh or through a
forwarded socket at an engine inside a VM. So the facts come from the runtime itself (``docker
info``, ``podman info``) and from a short probe container that reads ``/proc`` and ``/sys`` where
the containers really run. :func:`this_machine` is only for saying what this machine is when no
runtime answers, and for telling whether a runtime is local (same kernel boot).
"""

from __future__ import annotations

import ast
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oomlab.rules.kernel import parse_meminfo, parse_thp
from oomlab.rules.results import CgroupVersion, RuntimeInfo

CGROUP_ROOT = Path("/sys/fs/cgroup")
THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

PROBE_READ = """
def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None
"""
"""The probes' one helper: a file's text, None when it cannot be read."""

PROBE_SCRIPT = (
    PROBE_READ
    + """
import os
cg = "/sys/fs/cgroup"
print(repr({
    "meminfo": read("/proc/meminfo"),
    "thp": read("/sys/kernel/mm/transparent_hugepage/enabled"),
    "boot_id": read("/proc/sys/kernel/random/boot_id"),
    "kernel": os.uname().release,
    "cgroup_v2": os.path.exists(cg + "/cgroup.controllers"),
    "swap_files": any(os.path.exists(cg + f) for f in (
        "/memory.swap.max", "/memory/memory.memsw.limit_in_bytes")),
}))
"""
)
"""Run by ``python3 -c`` in a container of the workload image (no network, read-only): what the
kernel under the engine says about itself. /proc/meminfo in a container shows the host's. The
image has only python3-minimal, which has no json module: the probe prints a Python literal."""


def cgroup_version_of(value: Any) -> CgroupVersion:
    """``1``, ``2``, ``v1``, ``v2`` (as engines spell it) -> :class:`CgroupVersion`."""
    text = str(value or "").lower().removeprefix("v")
    return {"1": CgroupVersion.V1, "2": CgroupVersion.V2}.get(text, CgroupVersion.UNKNOWN)


@dataclass(frozen=True)
class Probe:
    """What the probe container saw of its kernel."""

    memory_total_bytes: int | None
    swap_total_bytes: int | None
    transparent_hugepages: str | None
    boot_id: str | None
    kernel: str | None
    cgroup_version: CgroupVersion
    swap_accounting: bool | None


def probe_literal(output: str) -> Mapping[str, Any] | None:
    """A probe's last line that is a Python dict literal; None when there is none (it failed)."""
    for line in reversed(output.strip().splitlines()):
        try:
            data = ast.literal_eval(line)
        except (ValueError, SyntaxError):
            continue
        if isinstance(data, Mapping):
            return data
    return None


def parse_probe(output: str) -> Probe | None:
    """The probe's line (a Python dict literal); None when it is not there (the probe failed)."""
    data = probe_literal(output)
    return _probe(data) if data is not None else None


def _probe(data: Mapping[str, Any]) -> Probe:
    mem = parse_meminfo(data.get("meminfo") or "")
    cgroup_v2 = data.get("cgroup_v2")
    return Probe(
        memory_total_bytes=mem.get("MemTotal"),
        swap_total_bytes=mem.get("SwapTotal"),
        transparent_hugepages=parse_thp(data.get("thp")),
        boot_id=(data.get("boot_id") or "").strip() or None,
        kernel=data.get("kernel"),
        cgroup_version=CgroupVersion.UNKNOWN
        if cgroup_v2 is None
        else (CgroupVersion.V2 if cgroup_v2 else CgroupVersion.V1),
        swap_accounting=data.get("swap_files"),
    )


def is_local(probe: Probe | None) -> bool | None:
    """Whether the probe ran on this kernel (same boot): then the engine's cgroups are here."""
    if probe is None or probe.boot_id is None:
        return None
    try:
        return probe.boot_id == BOOT_ID.read_text().strip()
    except OSError:
        return None


def docker_info(
    info: Mapping[str, Any], version: Mapping[str, Any], probe: Probe | None
) -> RuntimeInfo:
    """A Docker engine's host from ``docker info``/``docker version`` and the probe.

    ``SwapLimit``, ``CgroupVersion``, ``MemTotal`` and ``KernelVersion`` are the engine's word;
    swap total and transparent hugepages only the probe can read.
    """
    cgroup = cgroup_version_of(info.get("CgroupVersion"))
    swap_limit = info.get("SwapLimit")
    return RuntimeInfo(
        cgroup_version=cgroup if cgroup != CgroupVersion.UNKNOWN else _probed_cgroup(probe),
        swap_total_bytes=probe.swap_total_bytes if probe else None,
        memory_total_bytes=info.get("MemTotal") or (probe.memory_total_bytes if probe else None),
        kernel=info.get("KernelVersion") or (probe.kernel if probe else None),
        engine="docker",
        engine_version=version.get("Version") or info.get("ServerVersion"),
        hostname=info.get("Name"),
        swap_limit_supported=swap_limit
        if isinstance(swap_limit, bool)
        else (probe.swap_accounting if probe else None),
        transparent_hugepages=probe.transparent_hugepages if probe else None,
        local=is_local(probe),
    )


def podman_info(info: Mapping[str, Any], probe: Probe | None) -> RuntimeInfo:
    """podman's host from ``podman info --format json`` and the probe."""
    host = info.get("host") or {}
    cgroup = cgroup_version_of(host.get("cgroupVersion"))
    local = is_local(probe)
    if local is None and host.get("serviceIsRemote") is True:
        local = False
    return RuntimeInfo(
        cgroup_version=cgroup if cgroup != CgroupVersion.UNKNOWN else _probed_cgroup(probe),
        swap_total_bytes=host.get("swapTotal", probe.swap_total_bytes if probe else None),
        memory_total_bytes=host.get("memTotal") or (probe.memory_total_bytes if probe else None),
        kernel=host.get("kernel") or (probe.kernel if probe else None),
        engine="podman",
        engine_version=(info.get("version") or {}).get("Version"),
        hostname=host.get("hostname"),
        swap_limit_supported=probe.swap_accounting if probe else None,
        transparent_hugepages=probe.transparent_hugepages if probe else None,
        local=local,
    )


def _probed_cgroup(probe: Probe | None) -> CgroupVersion:
    return probe.cgroup_version if probe else CgroupVersion.UNKNOWN


def cgroup_version(root: Path = CGROUP_ROOT) -> CgroupVersion:
    """This machine's: v2 when the unified hierarchy is mounted at the root."""
    if (root / "cgroup.controllers").exists():
        return CgroupVersion.V2
    if (root / "memory").is_dir():
        return CgroupVersion.V1
    return CgroupVersion.UNKNOWN


def this_machine() -> RuntimeInfo:
    """This process's own machine, read from its /proc and /sys (never used for predictions)."""

    def read(path: Path) -> str | None:
        try:
            return path.read_text()
        except OSError:
            return None

    mem = parse_meminfo(read(Path("/proc/meminfo")) or "")
    root = cgroup_version()
    swap_files = ("memory.swap.max", "memory/memory.memsw.limit_in_bytes")
    return RuntimeInfo(
        cgroup_version=root,
        swap_total_bytes=mem.get("SwapTotal"),
        memory_total_bytes=mem.get("MemTotal"),
        kernel=platform.release(),
        hostname=os.uname().nodename,
        swap_limit_supported=any((CGROUP_ROOT / f).exists() for f in swap_files),
        transparent_hugepages=parse_thp(read(THP_ENABLED)),
        local=True,
    )


def cgroup_peak_files(container_id: str, info: RuntimeInfo) -> list[Path]:
    """Where the cgroupfs driver puts a container's memory high-water marks; none when the
    engine's kernel is not this one (its cgroups are not readable here)."""
    if info.local is not True:
        return []
    if info.cgroup_version == CgroupVersion.V1:
        base = CGROUP_ROOT / "memory"
        names: tuple[str, ...] = ("memory.memsw.max_usage_in_bytes", "memory.max_usage_in_bytes")
        dirs = [base / "docker" / container_id, base / "libpod_parent" / f"libpod-{container_id}"]
    else:
        names = ("memory.peak",)
        dirs = [
            CGROUP_ROOT / "docker" / container_id,
            CGROUP_ROOT / "system.slice" / f"docker-{container_id}.scope",
            CGROUP_ROOT / "machine.slice" / f"libpod-{container_id}.scope",
        ]
    return [d / n for d in dirs for n in names]
