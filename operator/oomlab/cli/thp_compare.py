"""Transparent hugepages as a measured dimension: the same Burstable workload on a LimitedSwap
node, once under THP ``always`` and once under ``madvise``, each predicted by the operator and
observed.

The node's THP mode is switched only for the comparison, by a short-lived privileged helper pod
pinned to the node (hostPath ``/sys/kernel/mm/transparent_hugepage``), and the node's
``oomlab.dev/thp`` label (the operator's one source of a node's THP mode) follows it; both are
restored afterwards whatever happens (:func:`compare`). While a run lasts the same helper pod
samples, once a second, the node's ``/proc/meminfo`` and every Burstable container's cgroup
(``memory.current``, ``memory.swap.current``, ``memory.stat``'s ``swapcached`` and ``anon_thp``):
the workload's state at its peak is the sample with the most memory + swap in use: just before the
kill when it was OOM-killed (memhog's own summary line is never written then), before it let go
of its memory when it completed (its very last samples are after that).

Everything here is pure except :func:`compare`, which drives a :class:`NodePort` (the cluster I/O,
in ``thp_cli``) and so can be tested with a fake.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from oomlab.rules.kernel import parse_meminfo
from oomlab.rules.nodes import SWAP_TAINT_KEY, THP_LABEL, NodeFacts
from oomlab.rules.results import Predicted
from oomlab.rules.semantics import kernel_limit, limited_swap_bytes
from oomlab.rules.units import MiB, human
from oomlab.rules.workload import INTERPRETER_OVERHEAD_BYTES

MODES = ("always", "madvise")
"""The two modes compared, in this order: the one FACTS saw kill early first."""
COMPARE_LABEL = "oomlab.dev/thp-compare"
"""On every object a comparison creates (helper pods, experiments): its run's stamp."""
HELPER_CONTAINER = "thp"
THP_HOST_DIR = "/sys/kernel/mm/transparent_hugepage"
DEFAULT_SWAP_FILL = 0.75
"""The workload's demand beyond its memory limit, as a share of its LimitedSwap allowance: it
needs swap and fits in limit + swap with a quarter of the allowance to spare (FACTS' kind run,
killed under ``always``, used about 0.78 of its allowance)."""

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


class ThpError(RuntimeError):
    """The node's THP mode could not be switched (or read back as asked)."""


class ThpRestoreError(ThpError):
    """The node's THP mode or label could not be put back: say so loudly, never silently."""


# --------------------------------------------------------------------------------------------
# the helper pod and the workload's size


def helper_pod(
    name: str,
    namespace: str,
    node: str,
    *,
    image: str,
    set_mode: str | None,
    sample: bool,
    stamp: str,
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
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {COMPARE_LABEL: stamp, "app.kubernetes.io/component": "thp-helper"},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"key": SWAP_TAINT_KEY, "operator": "Exists"}],
            "containers": [
                {
                    "name": HELPER_CONTAINER,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-u", "-c", HELPER_SCRIPT],
                    "args": [set_mode or "-", "-1" if sample else "0"],
                    "securityContext": {"privileged": True, "runAsUser": 0, "runAsNonRoot": False},
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
        },
    }


@dataclass(frozen=True)
class Sizing:
    request_bytes: int
    limit_bytes: int
    swap_share_bytes: int
    """The kubelet's LimitedSwap share for the request, in whole pages (memory.swap.max)."""
    size_bytes: int
    """memhog's --size: whole MiB."""
    demand_bytes: int
    """size plus the interpreter: what the container needs at its peak."""

    def describe(self) -> str:
        capacity = self.limit_bytes + self.swap_share_bytes
        return (
            f"bulk {human(self.size_bytes)} ({human(self.demand_bytes)} with the interpreter) "
            f"against limit {human(self.limit_bytes)} + LimitedSwap share "
            f"{human(self.swap_share_bytes)} = {human(capacity)}"
        )


def sizing(request: int, limit: int, node: NodeFacts, fill: float = DEFAULT_SWAP_FILL) -> Sizing:
    """A workload that needs swap and fits in limit + the node's LimitedSwap share for the
    request: demand = limit + ``fill`` x share, computed from the node's own capacities."""
    if not 0 < fill < 1:
        raise ThpError(f"--swap-fill must be between 0 and 1 (exclusive), not {fill}")
    if not node.memory_capacity_bytes or not node.swap_capacity_bytes:
        raise ThpError(
            f"node {node.name} reports no memory or swap capacity (status.nodeInfo.swap): "
            "is it a LimitedSwap node with swap on?"
        )
    share = kernel_limit(
        limited_swap_bytes(request, node.memory_capacity_bytes, node.swap_capacity_bytes)
    )
    wanted = limit + math.floor(fill * share)
    size = (wanted - INTERPRETER_OVERHEAD_BYTES) // MiB * MiB
    return Sizing(request, limit, share, size, size + INTERPRETER_OVERHEAD_BYTES)


# --------------------------------------------------------------------------------------------
# the helper's log


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


# --------------------------------------------------------------------------------------------
# one run, and the comparison


@dataclass(frozen=True)
class ThpRun:
    mode: str
    experiment: str
    predicted: str | None
    prediction: str
    """The operator's explanation of its prediction (status.kubernetes.explanation)."""
    operator_thp: str | None
    """The THP mode the operator predicted with (status.kubernetes.transparentHugepages)."""
    observed: str
    exit_code: int | None
    reason: str | None
    allocated_bytes: int | None
    swap_limit_bytes: int | None
    predicted_swap_bytes: int | None
    end: EndState | None

    @property
    def verdict(self) -> str:
        """agrees, disagrees, or borderline (the rules would not call it)."""
        if self.predicted == Predicted.BORDERLINE.value:
            return "borderline"
        return "agrees" if self.predicted == self.observed else "disagrees"


def run_from_experiment(mode: str, body: Mapping[str, Any], end: EndState | None) -> ThpRun:
    """One run as the operator's status has it, plus the helper's samples of it."""
    status = body.get("status") or {}
    k8s = status.get("kubernetes") or {}
    return ThpRun(
        mode=mode,
        experiment=str((body.get("metadata") or {}).get("name", "")),
        predicted=k8s.get("predictedOutcome"),
        prediction=str(k8s.get("explanation") or status.get("message") or ""),
        operator_thp=k8s.get("transparentHugepages"),
        observed=str(status.get("phase") or "Pending"),
        exit_code=k8s.get("exitCode"),
        reason=k8s.get("reason"),
        allocated_bytes=k8s.get("allocatedBytes"),
        swap_limit_bytes=k8s.get("swapLimitBytes"),
        predicted_swap_bytes=k8s.get("predictedSwapBytes"),
        end=end,
    )


@dataclass(frozen=True)
class Comparison:
    node: str
    sizing: Sizing
    runs: tuple[ThpRun, ...]
    original_mode: str | None
    restored: str
    """One sentence: what the node was put back to."""


def findings(comparison: Comparison) -> list[str]:
    """Where a prediction and an observation disagree, or the operator predicted with another
    THP mode than the run's: each a sentence, never retried."""
    found = []
    for run in comparison.runs:
        if run.operator_thp != run.mode:
            found.append(
                f"THP {run.mode}: the operator predicted with THP '{run.operator_thp}', not "
                f"'{run.mode}' (its node facts were stale or the label did not follow)."
            )
        if run.end is not None and run.end.thp_seen not in (None, run.mode):
            found.append(f"THP {run.mode}: the kernel read '{run.end.thp_seen}' during the run.")
        if run.verdict == "disagrees":
            found.append(
                f"THP {run.mode}: predicted {run.predicted}, observed {run.observed}"
                f"{_got_to(run)}. {run.prediction}"
            )
    return found


def _got_to(run: ThpRun) -> str:
    if run.observed == "Completed" or run.allocated_bytes is None:
        return ""
    return f" after allocating {human(run.allocated_bytes)}"


def _size(value: int | None) -> str:
    return "?" if value is None else human(value)


def _at_end(end: EndState | None) -> str:
    if end is None:
        return "not sampled"
    return (
        f"memory {_size(end.memory_bytes)}, swap {_size(end.swap_bytes)}, "
        f"swap cache {_size(end.swap_cached_bytes)}, anon_thp {_size(end.anon_thp_bytes)}"
    )


def explanation(comparison: Comparison) -> str:
    """What the two runs show, in plain words, from what was measured."""
    by_mode = {run.mode: run for run in comparison.runs}
    always, madvise = by_mode.get("always"), by_mode.get("madvise")
    if always is None or madvise is None:
        return "Only " + ", ".join(f"{r.mode}: {r.observed}" for r in comparison.runs) + " ran."
    capacity = human(comparison.sizing.limit_bytes + comparison.sizing.swap_share_bytes)
    demand = human(comparison.sizing.demand_bytes)
    if always.observed == "OOMKilled" and madvise.observed == "Completed":
        end = always.end
        cached = end.swap_cached_bytes if end else None
        return (
            f"The same pod ({demand} against limit + swap = {capacity}) was OOM-killed under "
            f"THP always{_got_to(always)} and completed under madvise. At its peak under "
            f"always it held {_at_end(end)}: {_size(cached)} of swapped pages still sat in the "
            "swap cache, charged to the memory limit and the swap limit at once, so limit + swap "
            "was not what it could use; under madvise the swap cache at the peak was "
            f"{_size(madvise.end.swap_cached_bytes if madvise.end else None)}."
        )
    if always.observed == madvise.observed:
        peaks = ", ".join(
            f"{r.mode} {_size(r.end.peak_swap_cached_bytes if r.end else None)}"
            for r in comparison.runs
        )
        return (
            f"Both modes ended {always.observed} ({demand} against limit + swap = {capacity}): "
            f"THP did not change the outcome at this size on this node. The swap cache peaked "
            f"at {peaks}."
        )
    return (
        f"THP always: {always.observed}{_got_to(always)}; madvise: {madvise.observed}"
        f"{_got_to(madvise)} ({demand} against limit + swap = {capacity})."
    )


HEADINGS = (
    "THP",
    "predicted (operator)",
    "observed",
    "memory.swap.max",
    "at peak: memory / swap / swap cache / anon_thp",
    "swap cache at its largest (swap in use then)",
    "verdict",
)


def table_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for run in comparison.runs:
        observed = run.observed
        if run.exit_code is not None:
            observed += f", exit {run.exit_code}"
        observed += _got_to(run)
        swap_max = _size(run.swap_limit_bytes)
        if run.predicted_swap_bytes is not None and run.swap_limit_bytes is not None:
            swap_max += (
                " (= predicted)"
                if run.swap_limit_bytes == run.predicted_swap_bytes
                else (f" (predicted {human(run.predicted_swap_bytes)})")
            )
        end = run.end
        at_end = (
            "not sampled"
            if end is None
            else " / ".join(
                _size(v)
                for v in (
                    end.memory_bytes,
                    end.swap_bytes,
                    end.swap_cached_bytes,
                    end.anon_thp_bytes,
                )
            )
        )
        largest = (
            "not sampled"
            if end is None
            else (f"{_size(end.peak_swap_cached_bytes)} ({_size(end.swap_at_cache_peak_bytes)})")
        )
        rows.append(
            [run.mode, run.predicted or "?", observed, swap_max, at_end, largest, run.verdict]
        )
    return rows


def _md_row(values: Sequence[str]) -> str:
    return "| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in values) + " |"


def report_section(comparison: Comparison, heading: str = "## Transparent hugepages") -> str:
    """The comparison as a Markdown section for ``oomlab report``: table, explanation,
    findings, how it was measured. Pure."""
    lines = [
        heading,
        "",
        f"The same Burstable pod on node `{comparison.node}` (LimitedSwap, cgroup v2): "
        f"{comparison.sizing.describe()}, request {human(comparison.sizing.request_bytes)}.",
        "",
        _md_row(HEADINGS),
        "|" + "---|" * len(HEADINGS),
        *(_md_row(row) for row in table_rows(comparison)),
        "",
        explanation(comparison),
        "",
    ]
    found = findings(comparison)
    if found:
        lines += ["Findings (recorded once, not retried):", "", *(f"- {f}" for f in found), ""]
    lines += [
        "Predicted: the operator's `status.kubernetes.predictedOutcome` with the node labelled "
        f"`{THP_LABEL}` = the run's mode. At peak: the container's own cgroup "
        "(`memory.current`, `memory.swap.current`, `memory.stat` `swapcached` and `anon_thp`), "
        "sampled every second from the node by a helper pod, at the sample with the most memory "
        f"+ swap in use. {comparison.restored}",
    ]
    return "\n".join(lines) + "\n"


def to_json(comparison: Comparison) -> dict[str, Any]:
    data = asdict(comparison)
    data["findings"] = findings(comparison)
    data["explanation"] = explanation(comparison)
    for run, raw in zip(comparison.runs, data["runs"], strict=True):
        raw["verdict"] = run.verdict
    return data


def from_json(data: Mapping[str, Any]) -> Comparison:
    """A comparison saved with :func:`to_json` (``oomlab thp-compare --save``), for a report
    made later; the derived keys (verdict, findings, explanation) are computed again."""
    runs = []
    for raw in data["runs"]:
        fields = {k: v for k, v in raw.items() if k != "verdict"}
        end = fields.pop("end")
        runs.append(ThpRun(**fields, end=None if end is None else EndState(**end)))
    return Comparison(
        node=data["node"],
        sizing=Sizing(**data["sizing"]),
        runs=tuple(runs),
        original_mode=data.get("original_mode"),
        restored=data.get("restored", ""),
    )


# --------------------------------------------------------------------------------------------
# switching and restoring


@dataclass(frozen=True)
class Helper:
    """A running helper pod that set the mode and samples."""

    name: str
    before: str | None
    after: str | None


class NodePort(Protocol):
    """What :func:`compare` needs from the cluster: the node's THP label, and helper pods."""

    def read_label(self) -> str | None: ...

    def set_label(self, value: str | None) -> None: ...

    def start_helper(self, mode: str) -> Helper:
        """Create the helper pod (set ``mode``, then sample) and wait for its ``after`` line;
        on failure it has deleted the pod already."""
        ...

    def finish_helper(self, helper: Helper) -> list[str]:
        """The helper's log, then delete the pod."""
        ...

    def write_mode(self, mode: str) -> str | None:
        """A one-shot helper: write ``mode``; the mode read back. The pod is deleted."""
        ...


RunExperiment = Callable[[str], tuple[Mapping[str, Any], str | None]]
"""Runs the workload under a mode: the experiment's terminal body and its container id."""


def compare(
    port: NodePort,
    run_experiment: RunExperiment,
    *,
    node: str,
    size: Sizing,
    modes: Sequence[str] = MODES,
    progress: Callable[[str], None] = lambda _: None,
) -> Comparison:
    """Each mode in turn: switch the node (helper pod, then its label), run, collect. The node's
    mode and label are restored in a ``finally``, whatever failed; a failed restore raises
    :class:`ThpRestoreError` (chained to the failure that came first, if any)."""
    original_label = port.read_label()
    original_mode: str | None = None
    current: str | None = None
    touched = False
    runs: list[ThpRun] = []
    try:
        for mode in modes:
            progress(f"THP {mode}: switching node {node} (helper pod)")
            touched = True
            helper = port.start_helper(mode)
            try:
                original_mode = original_mode or helper.before
                current = helper.after
                if helper.after != mode:
                    raise ThpError(f"node {node}: wrote THP '{mode}', read back '{helper.after}'")
                port.set_label(mode)
                progress(f"THP {mode}: running the workload")
                body, container_id = run_experiment(mode)
            finally:
                lines = port.finish_helper(helper)
            runs.append(
                run_from_experiment(mode, body, end_state(parse_helper_log(lines), container_id))
            )
    finally:
        restored = restore(port, touched, original_mode, original_label, current, node, progress)
    return Comparison(node, size, tuple(runs), original_mode, restored)


def restore(
    port: NodePort,
    touched: bool,
    original_mode: str | None,
    original_label: str | None,
    current: str | None,
    node: str,
    progress: Callable[[str], None] = lambda _: None,
) -> str:
    """Put the node's THP mode and label back as found. The mode is written only when the last
    mode read back differs from the original (or is unknown); without a known original the
    label's value (the kubelet read it from the kernel at boot) is the target."""
    if not touched:
        return "The node was not changed."
    target = original_mode or original_label
    try:
        if target is None:
            raise ThpRestoreError(
                f"node {node}: THP mode before the comparison is unknown (no helper line, no "
                f"{THP_LABEL} label); it may still be '{current}'"
            )
        if current != target:
            progress(f"restoring THP {target} on node {node} (helper pod)")
            seen = port.write_mode(target)
            if seen != target:
                raise ThpRestoreError(f"node {node}: restoring THP '{target}' read back '{seen}'")
        port.set_label(original_label)
    except ThpRestoreError:
        raise
    except Exception as exc:
        raise ThpRestoreError(
            f"node {node}: THP may still be '{current}', restoring '{target}' failed: {exc}"
        ) from exc
    label = "removed" if original_label is None else f"'{original_label}'"
    return f"Afterwards the node's THP mode was restored to '{target}' and its label to {label}."
