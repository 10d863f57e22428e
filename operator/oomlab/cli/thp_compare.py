"""Transparent hugepages as a measured dimension: the same Burstable workload on a LimitedSwap
node, once under THP ``always`` and once under ``madvise``, each predicted by the operator and
observed.

The node's THP mode is switched only for the comparison, by a short-lived privileged helper pod
pinned to the node (hostPath ``/sys/kernel/mm/transparent_hugepage``), and the node's
``oomlab.dev/thp`` label (the operator's one source of a node's THP mode) follows it; both are
restored afterwards whatever happens (:func:`compare`). While a run lasts the same helper pod
samples the node and the workload's cgroup (:mod:`oomlab.cli.thp_helper`).

Everything here is pure except :func:`compare`, which drives a :class:`NodePort` (the cluster I/O,
in :mod:`oomlab.cli.thp`) and so can be tested with a fake.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from oomlab.cli.thp_helper import EndState, end_state, parse_helper_log
from oomlab.rules.nodes import THP_LABEL, NodeFacts
from oomlab.rules.results import Predicted
from oomlab.rules.semantics import kernel_limit, limited_swap_bytes
from oomlab.rules.units import MiB, human
from oomlab.rules.workload import INTERPRETER_OVERHEAD_BYTES

MODES = ("always", "madvise")
"""The two modes compared, in this order: the one FACTS saw kill early first."""
COMPARE_LABEL = "oomlab.dev/thp-compare"
"""On every object a comparison creates (helper pods, experiments): its run's stamp."""
DEFAULT_SWAP_FILL = 0.75
"""The workload's demand beyond its memory limit, as a share of its LimitedSwap allowance: it
needs swap and fits in limit + swap with a quarter of the allowance to spare (FACTS' kind run,
killed under ``always``, used about 0.78 of its allowance)."""


class ThpError(RuntimeError):
    """The node's THP mode could not be switched (or read back as asked)."""


class ThpRestoreError(ThpError):
    """The node's THP mode or label could not be put back: say so loudly, never silently."""


# --------------------------------------------------------------------------------------------
# the workload's size


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
