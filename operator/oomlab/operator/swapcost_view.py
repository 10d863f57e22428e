"""``status.swapCost``: what surviving by swap cost the experiment, against its unconstrained twin.

Pure, dicts in and out, like the other views. The section moves Waiting (the experiment's own pod
has not finished) -> Measuring (it completed using swap; the twin runs) -> Done, or straight to
Done when there is nothing to measure: it was not saved (OOM-killed, failed, timed out) or it used
no swap (a NoSwap node gives none). The main run's numbers are recorded when it ends, so the
verdict never needs its pod again (ttlSecondsAfterFinished may have removed it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oomlab.rules.classify import sentence
from oomlab.rules.results import Outcome, Progress, SwapActivity
from oomlab.rules.swapcost import CostVerdict, cost_against_twin, used_swap, work_seconds

STATE_WAITING = "Waiting"
STATE_MEASURING = "Measuring"
STATE_DONE = "Done"

VERDICTS = {
    CostVerdict.CHEAP: "Cheap",
    CostVerdict.COSTLY: "Costly",
    CostVerdict.NO_SWAP: "NoSwapUsed",
    CostVerdict.NOT_SAVED: "NotSaved",
    CostVerdict.NO_BASELINE: "NoBaseline",
}
"""CostVerdict as the status spells it (CamelCase, as Kubernetes enums are)."""

_SUMMARIES = {
    CostVerdict.NO_SWAP: "no swap",
    CostVerdict.NOT_SAVED: "not saved",
    CostVerdict.NO_BASELINE: "no baseline",
}
"""The printer column for verdicts without a ratio."""


def swap_cost_of(status: Mapping[str, Any]) -> dict[str, Any]:
    return dict(status.get("swapCost") or {})


def waiting() -> dict[str, Any]:
    return {
        "state": STATE_WAITING,
        "summary": "waiting",
        "message": "Measured once the experiment's pod has finished: if it completed using "
        "swap, its unconstrained twin runs next on the same node.",
    }


def run_fields(progress: Progress | None) -> dict[str, Any]:
    """The experiment's own run, as the workload measured it (its cgroup and the kernel)."""
    swap = progress.swap if progress else None
    seconds = work_seconds(progress) if progress else None
    fields: dict[str, Any] = {
        "workSeconds": None if seconds is None else round(seconds, 3),
        "swapInBytes": swap.swapin_bytes if swap else None,
        "swapOutBytes": swap.swapout_bytes if swap else None,
        "swapCountScope": swap.swapin_scope if swap else None,
        "majorFaults": swap.major_faults if swap else None,
        "swapBytesAtEnd": swap.swap_bytes_at_end if swap else None,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _activity(section: Mapping[str, Any]) -> SwapActivity | None:
    keys = ("swapInBytes", "swapOutBytes", "majorFaults", "swapBytesAtEnd")
    if all(section.get(key) is None for key in keys):
        return None
    return SwapActivity(
        swapin_bytes=section.get("swapInBytes"),
        swapout_bytes=section.get("swapOutBytes"),
        swapin_scope=str(section.get("swapCountScope") or "unknown"),
        major_faults=section.get("majorFaults"),
        swap_bytes_at_end=section.get("swapBytesAtEnd"),
    )


def _done(section: Mapping[str, Any], verdict: CostVerdict, clause: str) -> dict[str, Any]:
    return {
        **section,
        "state": STATE_DONE,
        "verdict": VERDICTS[verdict],
        "summary": _SUMMARIES.get(verdict, "?"),
        "message": sentence(clause),
    }


def after_run(
    outcome: Outcome | None,
    reason: str | None,
    progress: Progress | None,
    swap_limit_bytes: int | None,
) -> dict[str, Any]:
    """The section once the experiment's own pod has ended: Done when there is nothing to
    measure, else Measuring (the operator starts the twin)."""
    section = run_fields(progress)
    no_swap_given = swap_limit_bytes == 0
    if outcome != Outcome.COMPLETED:
        ended = f"{outcome.value if outcome else 'unknown'} ({reason or 'no reason given'})"
        if no_swap_given:
            clause = f"no swap to save it: the node gave the container none (swap limit 0); {ended}"
        else:
            clause = f"swap did not save it: {ended}"
        return _done(section, CostVerdict.NOT_SAVED, clause)
    swap = progress.swap if progress else None
    if no_swap_given or used_swap(swap) is False:
        why = (
            "the node gave the container no swap (swap limit 0)"
            if no_swap_given
            else "the workload fit in its memory limit (nothing in swap at the end)"
        )
        return _done(section, CostVerdict.NO_SWAP, f"no swap used; no cost to measure: {why}")
    return {
        **section,
        "state": STATE_MEASURING,
        "summary": "measuring",
        "message": "It completed using swap; its unconstrained twin (the same workload with "
        "memory enough and no swap) runs next on the same node.",
    }


def twin_started(
    section: Mapping[str, Any],
    *,
    pod_name: str,
    node_name: str | None,
    memory_bytes: int,
    created_at: str | None,
) -> dict[str, Any]:
    started = {
        **section,
        "twinPodName": pod_name,
        "twinNodeName": node_name,
        "twinMemoryBytes": memory_bytes,
        "twinCreatedAt": created_at,
    }
    return {key: value for key, value in started.items() if value is not None}


def after_twin(
    section: Mapping[str, Any],
    twin_outcome: Outcome | None,
    twin_reason: str | None,
    twin_progress: Progress | None,
    finished_at: str | None,
) -> dict[str, Any]:
    """The verdict once the twin has ended: the slowdown ratio and the sentence."""
    baseline = work_seconds(twin_progress) if twin_progress else None
    cost = cost_against_twin(
        section.get("workSeconds"),
        _activity(section),
        baseline,
        twin_outcome or Outcome.FAILED,
    )
    clause = cost.sentence
    if twin_outcome != Outcome.COMPLETED and twin_reason:
        clause = f"{clause} ({twin_reason})"
    done = _done(section, cost.verdict, clause)
    done.update(
        twinOutcome=twin_outcome.value if twin_outcome else None,
        twinWorkSeconds=None if baseline is None else round(baseline, 3),
        finishedAt=finished_at,
    )
    if cost.ratio is not None:
        done["ratio"] = round(cost.ratio, 2)
        if cost.verdict in (CostVerdict.CHEAP, CostVerdict.COSTLY):
            done["summary"] = f"{cost.ratio:.1f}x"
    return {key: value for key, value in done.items() if value is not None}


def twin_lost(section: Mapping[str, Any], why: str, finished_at: str) -> dict[str, Any]:
    """Done without a baseline: the twin was deleted, refused, or did not finish in time."""
    done = _done(section, CostVerdict.NO_BASELINE, f"no slowdown to report: {why}")
    done["finishedAt"] = finished_at
    return done


def for_experiment(
    recorded: Mapping[str, Any] | None,
    *,
    ended: bool,
    outcome: Outcome | None,
    reason: str | None,
    progress: Progress | None,
    swap_limit_bytes: int | None,
) -> dict[str, Any]:
    """The section as the experiment's own run stands: what was recorded once past Waiting,
    else decided now that the run ``ended``, else Waiting."""
    if recorded and recorded.get("state") != STATE_WAITING:
        return dict(recorded)
    if ended:
        return after_run(outcome, reason, progress, swap_limit_bytes)
    return waiting()
