"""thp-compare's helper pod, pinned to the node: it switches the node's THP mode and, while a
run lasts, samples once a second the node's ``/proc/meminfo`` and every Burstable container's
cgroup (``memory.current``, ``memory.swap.current``, ``memory.stat``'s ``swapcached`` and
``anon_thp``). The workload's state at its peak is the sample with the most memory + swap in use
(:func:`end_state`): just before the kill when it was OOM-killed (memhog's own summary line is
never written then), before it let go of its memory when it completed (its very last samples are
after that)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from oomlab.cli.node_switch import privileged_helper_pod
from oomlab.rules.kernel import parse_meminfo

HELPER_CONTAINER = "thp"
THP_HOST_DIR = "/sys/kernel/mm/transparent_hugepage"
# Runs inside the helper pod on Debian's python3-minimal (the memhog image): no json module, so
# it prints ``key=value`` lines; a node sample carries its /proc/meminfo lines as read, after
# `` | `` (parse_meminfo reads them). argv: MODE|- (write it to THP's enabled file first), SAMPLES
# (how many samples, a second apart; -1: until the pod is deleted). Paths under $HELPER_ROOT.
HELPER_SCRIPT = r"""
import os, sys, time
ROOT = os.environ.get("HELPER_ROOT", "/host")
THP = ROOT + "/thp/enabled"
CGROUP = ROOT + "/cgroup"
MEMINFO = os.environ.get("HELPER_MEMINFO", "/proc/meminfo")
STAT = ("anon", "anon_thp", "swapcached", "file", "thp_fault_alloc", "thp_swpout", "pgmajfault")
FILES = ("memory.current", "memory.swap.current", "memory.swap.max")
NODE = ("SwapCached", "AnonHugePages", "SwapTotal", "SwapFree", "MemAvailable")
def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
def selected():
    text = read(THP).strip()
    return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else text
say("before " + selected())
if sys.argv[1] != "-":
    with open(THP, "w") as f:
        f.write(sys.argv[1])
say("after " + selected())
left = int(sys.argv[2])
while left != 0:
    left -= 1
    now = "t=%.2f" % time.time()
    node = [l for l in read(MEMINFO).splitlines() if l.split(":", 1)[0] in NODE]
    say(" | ".join(["node " + now + " thp=" + selected()] + node))
    for top in ("kubepods.slice", "kubepods"):
        for d, subdirs, names in os.walk(os.path.join(CGROUP, top)):
            if subdirs or "burstable" not in d or "memory.stat" not in names:
                continue
            parts = ["cg", now, "path=" + os.path.relpath(d, CGROUP)]
            for name in FILES:
                value = read(os.path.join(d, name)).strip()
                if value:
                    parts.append(name + "=" + value)
            for l in read(os.path.join(d, "memory.stat")).splitlines():
                kv = l.split()
                if len(kv) == 2 and kv[0] in STAT:
                    parts.append(kv[0] + "=" + kv[1])
            say(" ".join(parts))
    if left != 0:
        time.sleep(1)
"""


def helper_pod(
    name: str,
    namespace: str,
    node: str,
    *,
    image: str,
    set_mode: str | None,
    sample: bool,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """A privileged pod bound to ``node`` that writes ``set_mode`` (None: only reads) into the
    node's THP ``enabled`` file, prints the mode before and after, and with ``sample`` keeps
    sampling until deleted. It tolerates the LimitedSwap taint and runs as root: nothing else
    in the project may write the node's THP mode."""
    mounts: list[dict[str, Any]] = [{"name": "thp", "mountPath": "/host/thp"}]
    volumes: list[dict[str, Any]] = [
        {"name": "thp", "hostPath": {"path": THP_HOST_DIR, "type": "Directory"}}
    ]
    if sample:
        mounts.append({"name": "cgroup", "mountPath": "/host/cgroup", "readOnly": True})
        volumes.append({"name": "cgroup", "hostPath": {"path": "/sys/fs/cgroup"}})
    return privileged_helper_pod(
        name, namespace, node, image=image, component="thp-helper", labels=labels,
        container={
            "name": HELPER_CONTAINER,
            "command": ["python3", "-u", "-c", HELPER_SCRIPT],
            "args": [set_mode or "-", "-1" if sample else "0"],
            "volumeMounts": mounts,
        },
        volumes=volumes,
    )  # fmt: skip


@dataclass(frozen=True)
class NodeSample:
    t: float
    thp: str
    swap_cached_bytes: int | None
    anon_huge_bytes: int | None


@dataclass(frozen=True)
class CgroupSample:
    t: float
    path: str
    memory_bytes: int | None
    swap_bytes: int | None
    swap_max_bytes: int | None
    """None: ``max`` (unlimited) or not readable."""
    stat: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class HelperLog:
    before: str | None = None
    after: str | None = None
    nodes: tuple[NodeSample, ...] = ()
    cgroups: tuple[CgroupSample, ...] = ()


def _fields(words: Iterable[str]) -> dict[str, str]:
    return dict(w.split("=", 1) for w in words if "=" in w)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def parse_helper_log(lines: Iterable[str]) -> HelperLog:
    """The helper pod's lines: ``before MODE``, ``after MODE``, ``node ...`` and ``cg ...``
    samples. Lines it does not know (a kubelet message, a torn last line) are skipped."""
    before = after = None
    nodes: list[NodeSample] = []
    cgroups: list[CgroupSample] = []
    for line in lines:
        kind, _, rest = line.strip().partition(" ")
        rest, *meminfo = rest.split(" | ")
        words = rest.split()
        if kind in ("before", "after") and len(words) == 1:
            before, after = (words[0], after) if kind == "before" else (before, words[0])
            continue
        values = _fields(words)
        try:
            t = float(values.get("t", ""))
        except ValueError:
            continue
        if kind == "node" and "thp" in values:
            node = parse_meminfo("\n".join(meminfo))
            nodes.append(
                NodeSample(t, values["thp"], node.get("SwapCached"), node.get("AnonHugePages"))
            )
        elif kind == "cg" and "path" in values:
            known = {"t", "path", "memory.current", "memory.swap.current", "memory.swap.max"}
            stat = {k: int(v) for k, v in values.items() if k not in known and v.isdigit()}
            cgroups.append(
                CgroupSample(
                    t,
                    values["path"],
                    _int(values.get("memory.current")),
                    _int(values.get("memory.swap.current")),
                    _int(values.get("memory.swap.max")),
                    stat,
                )
            )
    return HelperLog(before, after, tuple(nodes), tuple(cgroups))


@dataclass(frozen=True)
class EndState:
    """The workload's container at its peak: the sample with the most memory + swap in use."""

    memory_bytes: int | None
    swap_bytes: int | None
    swap_max_bytes: int | None
    swap_cached_bytes: int | None
    """The container's own ``memory.stat`` ``swapcached``: pages charged to memory and swap."""
    anon_thp_bytes: int | None
    node_swap_cached_bytes: int | None
    """The node's ``/proc/meminfo`` SwapCached at the same moment (whole kernel)."""
    peak_swap_cached_bytes: int | None
    """The container's largest ``swapcached`` over the run (not always at the peak)."""
    peak_swap_bytes: int | None
    samples: int
    thp_seen: str | None
    """The node's THP mode as the helper read it during the run (the kernel's, not the label)."""
    swap_at_cache_peak_bytes: int | None = None
    """``memory.swap.current`` when ``swapcached`` was at its largest: how close the swap limit
    was while those pages were counted twice."""


def end_state(log: HelperLog, container_id: str | None) -> EndState | None:
    """The container at its peak, its cgroup matched by its id in the path (systemd's
    ``cri-containerd-<id>.scope`` or cgroupfs' ``<id>``); None when it was never sampled."""
    if not container_id:
        return None
    own = [s for s in log.cgroups if container_id in s.path]
    if not own:
        return None
    peak = max(own, key=lambda s: (s.memory_bytes or 0) + (s.swap_bytes or 0))
    node = next((n for n in reversed(log.nodes) if n.t <= peak.t), None)
    cached = [s.stat["swapcached"] for s in own if "swapcached" in s.stat]
    swapped = [s.swap_bytes for s in own if s.swap_bytes is not None]
    cache_peak = max(own, key=lambda s: s.stat.get("swapcached", -1))
    modes = {n.thp for n in log.nodes}
    return EndState(
        memory_bytes=peak.memory_bytes,
        swap_bytes=peak.swap_bytes,
        swap_max_bytes=peak.swap_max_bytes,
        swap_cached_bytes=peak.stat.get("swapcached"),
        anon_thp_bytes=peak.stat.get("anon_thp"),
        node_swap_cached_bytes=node.swap_cached_bytes if node else None,
        peak_swap_cached_bytes=max(cached) if cached else None,
        peak_swap_bytes=max(swapped) if swapped else None,
        samples=len(own),
        thp_seen=modes.pop() if len(modes) == 1 else ("/".join(sorted(modes)) or None),
        swap_at_cache_peak_bytes=cache_peak.swap_bytes if cached else None,
    )
