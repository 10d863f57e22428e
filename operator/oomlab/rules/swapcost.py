"""What surviving by swap costs: a run that needed swap against the same run with memory enough.

The "unconstrained twin" is the same workload with a memory limit well above its demand and no
swap (``--memory-swap`` equal to ``--memory``). The cost is the ratio of the two runs' working
time as the workload measured it (allocation plus re-access passes, not container start-up), with
the swap traffic the workload read from its own cgroup and the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from oomlab.rules.results import Outcome, Progress, RunResult, SwapActivity
from oomlab.rules.units import MiB, human

CHEAP_RATIO = 1.5
"""Up to this slowdown, swap "saved it cheaply"; above, it saved it at a price worth stating."""

TWIN_HEADROOM_BYTES = 256 * MiB


class CostVerdict(StrEnum):
    CHEAP = "cheap"
    COSTLY = "costly"
    NO_SWAP = "no swap used"
    NOT_SAVED = "not saved"
    NO_BASELINE = "no baseline"


@dataclass(frozen=True)
class SwapCost:
    verdict: CostVerdict
    sentence: str
    ratio: float | None = None
    seconds: float | None = None
    baseline_seconds: float | None = None
    swap: SwapActivity | None = None


def twin_memory_bytes(demand_bytes: int) -> int:
    """A memory limit the workload never reaches: demand plus headroom, a whole number of MiB."""
    wanted = demand_bytes + max(TWIN_HEADROOM_BYTES, demand_bytes // 4)
    return -(-wanted // MiB) * MiB


def work_seconds(progress: Progress) -> float | None:
    """The workload's own working time: allocation plus re-access (None if it did not say)."""
    if progress.allocate_s is None:
        return None
    return progress.allocate_s + (progress.reaccess_s or 0.0)


def slowdown_ratio(seconds: float | None, baseline_seconds: float | None) -> float | None:
    if seconds is None or baseline_seconds is None or baseline_seconds <= 0:
        return None
    return seconds / baseline_seconds


def used_swap(swap: SwapActivity | None) -> bool | None:
    """Whether the run's cgroup went to swap; None when nothing it reported can tell."""
    if swap is None:
        return None
    if swap.swap_bytes_at_end:
        return True
    if swap.swapin_scope == "cgroup" and swap.swapout_bytes is not None:
        return swap.swapout_bytes > 0
    if swap.swap_bytes_at_end == 0:
        return False
    return None


def describe_traffic(swap: SwapActivity | None) -> str:
    if swap is None or swap.swapin_bytes is None:
        return "swap-ins unknown"
    scope = " (system-wide count)" if swap.swapin_scope == "system" else ""
    faults = "" if swap.major_faults is None else f", {swap.major_faults:,} major faults"
    return f"{human(swap.swapin_bytes)} swapped in{scope}{faults}"


def swap_cost(
    swapping: RunResult, baseline: RunResult, *, cheap_ratio: float = CHEAP_RATIO
) -> SwapCost:
    """The verdict on ``swapping`` (a run under a memory limit with swap) against ``baseline``
    (its unconstrained twin): cheap, at N times the cost, or not saved at all."""
    swap = swapping.progress.swap
    if swapping.outcome != Outcome.COMPLETED:
        return SwapCost(
            CostVerdict.NOT_SAVED,
            f"swap did not save it: {swapping.outcome.value} ({swapping.reason})",
            swap=swap,
        )
    return cost_against_twin(
        work_seconds(swapping.progress),
        swap,
        work_seconds(baseline.progress),
        baseline.outcome,
        cheap_ratio=cheap_ratio,
    )


def cost_against_twin(
    seconds: float | None,
    swap: SwapActivity | None,
    baseline_seconds: float | None,
    baseline_outcome: Outcome,
    *,
    cheap_ratio: float = CHEAP_RATIO,
) -> SwapCost:
    """The verdict on a run that completed in ``seconds`` of work with ``swap`` traffic, against
    its unconstrained twin's ``baseline_seconds`` (the twin ended ``baseline_outcome``)."""
    ratio = slowdown_ratio(seconds, baseline_seconds)
    if baseline_outcome != Outcome.COMPLETED or ratio is None:
        why = (
            f"the unconstrained run ended {baseline_outcome.value}"
            if baseline_outcome != Outcome.COMPLETED
            else "a run did not report its working time"
        )
        return SwapCost(CostVerdict.NO_BASELINE, f"no slowdown to report: {why}", swap=swap)
    assert seconds is not None and baseline_seconds is not None
    times = f"{seconds:.2f} s vs {baseline_seconds:.2f} s with memory enough"
    traffic = describe_traffic(swap)
    if used_swap(swap) is False:
        verdict, head = CostVerdict.NO_SWAP, f"it needed no swap ({ratio:.1f}x)"
    elif ratio <= cheap_ratio:
        verdict, head = CostVerdict.CHEAP, f"swap saved it cheaply ({ratio:.1f}x the time)"
    else:
        verdict, head = CostVerdict.COSTLY, f"swap saved it at {ratio:.1f} times the cost"
    return SwapCost(verdict, f"{head}: {times}, {traffic}", ratio, seconds, baseline_seconds, swap)
