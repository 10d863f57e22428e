"""Facts about the local machine: cgroup version, swap, memory. Read from /proc and /sys."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from oomlab.results import CgroupVersion, HostFacts

CGROUP_ROOT = Path("/sys/fs/cgroup")


def meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    """``/proc/meminfo`` in bytes, keyed by field name (``SwapTotal``, ``MemTotal``, ...)."""
    values: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            factor = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
            values[key.strip()] = int(parts[0]) * factor
    return values


def cgroup_version(root: Path = CGROUP_ROOT) -> CgroupVersion:
    """v2 when the unified hierarchy is mounted at the root (it has cgroup.controllers)."""
    if (root / "cgroup.controllers").exists():
        return CgroupVersion.V2
    if (root / "memory").is_dir():
        return CgroupVersion.V1
    return CgroupVersion.UNKNOWN


def local_host_facts() -> HostFacts:
    info = meminfo()
    return HostFacts(
        cgroup_version=cgroup_version(),
        swap_total_bytes=info.get("SwapTotal"),
        memory_total_bytes=info.get("MemTotal"),
        kernel=platform.release(),
        hostname=os.uname().nodename,
    )
