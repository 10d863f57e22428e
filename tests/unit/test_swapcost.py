"""The swap-cost rules: the twin's memory, the slowdown ratio, the verdict's sentence."""

from __future__ import annotations

import pytest

from oomlab.rules.results import Outcome, Progress, RunResult, SwapActivity
from oomlab.rules.swapcost import (
    CHEAP_RATIO,
    CostVerdict,
    slowdown_ratio,
    swap_cost,
    twin_memory_bytes,
    used_swap,
    work_seconds,
)

MiB = 2**20


def _result(
    outcome: Outcome = Outcome.COMPLETED,
    allocate_s: float | None = 1.0,
    reaccess_s: float | None = None,
    swap: SwapActivity | None = None,
) -> RunResult:
    progress = Progress(allocate_s=allocate_s, reaccess_s=reaccess_s, swap=swap)
    return RunResult("docker", outcome, "because", progress=progress)


SWAPPED = SwapActivity(swapin_bytes=512 * MiB, swapout_bytes=1024 * MiB, swapin_scope="system",
                       major_faults=1234, swap_bytes_at_end=512 * MiB)  # fmt: skip
NO_SWAP = SwapActivity(swapin_bytes=0, swapout_bytes=0, swapin_scope="system", major_faults=0,
                       swap_bytes_at_end=0)  # fmt: skip


def test_twin_memory_is_well_above_demand_in_whole_mib() -> None:
    assert twin_memory_bytes(1012 * MiB) == 1268 * MiB  # + 256 MiB
    assert twin_memory_bytes(4096 * MiB) == 5120 * MiB  # + a quarter
    assert twin_memory_bytes(MiB + 1) % MiB == 0


def test_work_seconds_is_allocation_plus_reaccess() -> None:
    assert work_seconds(Progress(allocate_s=1.5, reaccess_s=2.0)) == 3.5
    assert work_seconds(Progress(allocate_s=1.5)) == 1.5
    assert work_seconds(Progress()) is None


@pytest.mark.parametrize(
    ("seconds", "baseline", "ratio"),
    [(3.0, 1.5, 2.0), (1.0, 1.0, 1.0), (None, 1.0, None), (1.0, None, None), (1.0, 0.0, None)],
)
def test_slowdown_ratio(seconds: float | None, baseline: float | None, ratio: float | None) -> None:
    assert slowdown_ratio(seconds, baseline) == ratio


@pytest.mark.parametrize(
    ("swapping", "baseline", "verdict", "words"),
    [
        (_result(allocate_s=1.2, swap=SWAPPED), _result(), CostVerdict.CHEAP,
         "swap saved it cheaply (1.2x the time)"),
        (_result(allocate_s=2.0, reaccess_s=6.0, swap=SWAPPED), _result(reaccess_s=1.0),
         CostVerdict.COSTLY, "swap saved it at 4.0 times the cost"),
        (_result(Outcome.OOM_KILLED, swap=None), _result(), CostVerdict.NOT_SAVED,
         "swap did not save it: OOMKilled"),
        (_result(swap=SWAPPED), _result(Outcome.FAILED), CostVerdict.NO_BASELINE,
         "the unconstrained run ended Failed"),
        (_result(swap=SWAPPED), _result(allocate_s=None), CostVerdict.NO_BASELINE,
         "did not report its working time"),
        (_result(allocate_s=1.0, swap=NO_SWAP), _result(), CostVerdict.NO_SWAP,
         "it needed no swap"),
    ],
)  # fmt: skip
def test_verdicts(
    swapping: RunResult, baseline: RunResult, verdict: CostVerdict, words: str
) -> None:
    cost = swap_cost(swapping, baseline)
    assert cost.verdict == verdict
    assert words in cost.sentence


def test_the_sentence_carries_times_and_traffic() -> None:
    cost = swap_cost(_result(allocate_s=3.0, swap=SWAPPED), _result(allocate_s=1.0))
    assert cost.ratio == 3.0
    assert cost.sentence == (
        "swap saved it at 3.0 times the cost: 3.00 s vs 1.00 s with memory enough, "
        "512 MiB swapped in (system-wide count), 1,234 major faults"
    )


def test_cheap_threshold_is_inclusive() -> None:
    cost = swap_cost(_result(allocate_s=CHEAP_RATIO, swap=SWAPPED), _result(allocate_s=1.0))
    assert cost.verdict == CostVerdict.CHEAP


@pytest.mark.parametrize(
    ("swap", "used"),
    [
        (None, None),
        (SWAPPED, True),
        (NO_SWAP, False),
        (SwapActivity(swapout_bytes=4096, swapin_scope="cgroup"), True),
        (SwapActivity(swapout_bytes=0, swapin_scope="cgroup"), False),
        (SwapActivity(swapout_bytes=4096, swapin_scope="system"), None),
    ],
)
def test_used_swap(swap: SwapActivity | None, used: bool | None) -> None:
    assert used_swap(swap) is used
