"""Node memory pressure: eviction vs OOM kill vs swap, table by table, with the VM node's numbers
(1536 MiB guest: capacity 1,531,936,768 B, 2 GiB swap, evictionHard memory.available 100Mi)."""

from __future__ import annotations

import pytest

from oomlab.rules.docker_pressure import docker_fill_prediction
from oomlab.rules.pressure import (
    EVICTION_SURE_S,
    Fill,
    NodeMemory,
    NodeOutcome,
    PodMemory,
    eviction_order,
    oom_score_adj,
    oom_victim,
    predict_node_pressure,
    predict_run,
)
from oomlab.rules.pressure import WORKLOAD as WORKLOAD_NAME
from oomlab.rules.semantics import QoSClass, limited_swap_bytes

MiB = 2**20
CAPACITY = 1_531_936_768
NODE_SWAP = 2_147_479_552
SHARE_400 = limited_swap_bytes(400 * MiB, CAPACITY, NODE_SWAP)  # about 560 MiB


def vm(swap: int = SHARE_400, baseline: int = 350 * MiB, reserved: int = 0) -> NodeMemory:
    return NodeMemory(
        capacity_bytes=CAPACITY,
        swap_bytes=swap,
        node_swap_bytes=NODE_SWAP,
        baseline_bytes=baseline,
        reserved_bytes=reserved,
    )


@pytest.mark.parametrize(
    ("case", "node", "fill", "expected"),
    [
        # Burstable, no limit, LimitedSwap: the leak is slow, so the kubelet sees the pressure
        # long before the swap share runs out: evicted with swap free.
        (
            "slow leak, swap share holds the overflow",
            vm(),
            Fill(1300 * MiB, rate_bytes_per_s=20 * MiB, hold_s=30),
            NodeOutcome.EVICTED,
        ),
        # The same fill in one bulk allocation that exits at once: the pressure lasts less than
        # a kubelet pass and the swap share keeps the kernel from killing it.
        ("bulk, no hold", vm(), Fill(1300 * MiB), NodeOutcome.COMPLETED_IN_SWAP),
        # NoSwap: the overflow has nowhere to go; a bulk fill reaches the machine's wall first.
        ("NoSwap bulk", vm(swap=0), Fill(1300 * MiB), NodeOutcome.SYSTEM_OOM_KILLED),
        # NoSwap, slow leak: 50 s from the threshold to the wall, the kubelet evicts first.
        (
            "NoSwap slow leak",
            vm(swap=0),
            Fill(1300 * MiB, rate_bytes_per_s=2 * MiB),
            NodeOutcome.EVICTED,
        ),
        # NoSwap, 10 s from threshold to wall: a race with the 10 s eviction pass.
        (
            "NoSwap race",
            vm(swap=0),
            Fill(1300 * MiB, rate_bytes_per_s=10 * MiB),
            NodeOutcome.BORDERLINE,
        ),
        # Reserved memory makes the pods' cgroup the first wall (1161 MiB < 1261 MiB).
        (
            "reserved: kubepods wall first",
            vm(swap=0, baseline=200 * MiB, reserved=300 * MiB),
            Fill(1300 * MiB),
            NodeOutcome.ALLOCATABLE_OOM_KILLED,
        ),
        # A limit below the node's room: the container's own cgroup decides.
        (
            "limit, swap carries",
            vm(),
            Fill(800 * MiB, limit_bytes=500 * MiB),
            NodeOutcome.COMPLETED_IN_SWAP,
        ),
        (
            "limit, over limit+swap",
            vm(),
            Fill(1200 * MiB, limit_bytes=500 * MiB),
            NodeOutcome.OOM_KILLED,
        ),
        ("limit, fits", vm(), Fill(400 * MiB, limit_bytes=500 * MiB), NodeOutcome.COMPLETED),
        ("no limit, fits", vm(), Fill(500 * MiB), NodeOutcome.COMPLETED),
    ],
)
def test_which_comes_first(case: str, node: NodeMemory, fill: Fill, expected: NodeOutcome) -> None:
    assert predict_node_pressure(node, fill).outcome == expected, case


def test_eviction_explanation_names_free_swap_and_why() -> None:
    prediction = predict_node_pressure(vm(), Fill(1300 * MiB, rate_bytes_per_s=20 * MiB, hold_s=30))
    assert prediction.explanation.startswith("Evicted with 2048 MiB of node swap present")
    assert "memory.available, which does not count swap" in prediction.explanation
    # 1461 MiB capacity - 100 MiB threshold - 350 MiB baseline
    assert prediction.pressure_at_bytes == CAPACITY - 100 * MiB - 350 * MiB


def test_bystanders_bring_pressure_earlier() -> None:
    alone = predict_node_pressure(vm(), Fill(900 * MiB, rate_bytes_per_s=5 * MiB, hold_s=60))
    crowded = predict_node_pressure(
        vm(),
        Fill(900 * MiB, rate_bytes_per_s=5 * MiB, hold_s=60),
        [PodMemory("be", QoSClass.BEST_EFFORT, usage_bytes=300 * MiB)],
    )
    assert alone.outcome == NodeOutcome.COMPLETED
    assert crowded.outcome == NodeOutcome.EVICTED


def test_time_window_threshold() -> None:
    # Exactly the sure window from the threshold to the end of the hold: evicted.
    node = vm()
    room = CAPACITY - 100 * MiB - 350 * MiB
    fill = Fill(room + 100 * MiB, rate_bytes_per_s=100 * MiB / EVICTION_SURE_S)
    assert predict_node_pressure(node, fill).outcome == NodeOutcome.EVICTED


WORKLOAD = PodMemory(
    "workload", QoSClass.BURSTABLE, request_bytes=400 * MiB, usage_bytes=1000 * MiB
)


@pytest.mark.parametrize(
    ("pods", "first"),
    [
        # Usage above request decides, not QoS: the workload is 600 MiB over, BestEffort 300 MiB.
        ([PodMemory("be", QoSClass.BEST_EFFORT, usage_bytes=300 * MiB), WORKLOAD], "workload"),
        (
            [
                PodMemory("be", QoSClass.BEST_EFFORT, usage_bytes=300 * MiB),
                PodMemory("b", QoSClass.BURSTABLE, request_bytes=600 * MiB, usage_bytes=700 * MiB),
            ],
            "be",
        ),
        # A pod within its request goes after every pod above it, however large.
        (
            [
                PodMemory("g", QoSClass.GUARANTEED, request_bytes=900 * MiB, usage_bytes=800 * MiB),
                PodMemory("be", QoSClass.BEST_EFFORT, usage_bytes=10 * MiB),
            ],
            "be",
        ),
        # Among pods over their request, lower priority first.
        (
            [
                WORKLOAD,
                PodMemory("low", QoSClass.BEST_EFFORT, usage_bytes=5 * MiB, priority=-10),
            ],
            "low",
        ),
    ],
)
def test_eviction_order(pods: list[PodMemory], first: str) -> None:
    assert eviction_order(pods)[0].name == first


@pytest.mark.parametrize(
    ("pod", "adj"),
    [
        (PodMemory("be", QoSClass.BEST_EFFORT), 1000),
        (PodMemory("g", QoSClass.GUARANTEED, request_bytes=MiB), -997),
        (PodMemory("b", QoSClass.BURSTABLE, request_bytes=400 * MiB), 727),
        (PodMemory("huge", QoSClass.BURSTABLE, request_bytes=CAPACITY), 2),
        (PodMemory("tiny", QoSClass.BURSTABLE, request_bytes=1), 999),
    ],
)
def test_oom_score_adj(pod: PodMemory, adj: int) -> None:
    assert oom_score_adj(pod, CAPACITY) == adj


def test_oom_victim_prefers_best_effort_over_a_larger_burstable() -> None:
    total = CAPACITY + NODE_SWAP
    bystander = PodMemory("be", QoSClass.BEST_EFFORT, usage_bytes=300 * MiB)
    assert oom_victim([WORKLOAD, bystander], CAPACITY, total).name == "be"
    guaranteed = PodMemory("g", QoSClass.GUARANTEED, request_bytes=300 * MiB, usage_bytes=300 * MiB)
    assert oom_victim([WORKLOAD, guaranteed], CAPACITY, total).name == "workload"


def with_reclaim(reclaim: int, threshold: int = 100 * MiB, baseline: int = 180 * MiB) -> NodeMemory:
    return NodeMemory(
        capacity_bytes=CAPACITY,
        swap_bytes=SHARE_400,
        node_swap_bytes=NODE_SWAP,
        eviction_hard_bytes=threshold,
        reserved_bytes=64 * MiB,
        baseline_bytes=baseline,
        reclaim_available_bytes=reclaim,
    )


RECLAIM = 160 * MiB  # measured on the VM node: the kernel swaps from memory.available ~160 MiB


@pytest.mark.parametrize(
    ("case", "node", "fill", "expected"),
    [
        # The live run of 2026-12-03: the kernel swapped before the kubelet's threshold, and
        # 1300Mi fits the room above the reclaim point plus the 561 MiB share.
        (
            "reclaim above threshold, fits the share",
            with_reclaim(RECLAIM),
            Fill(1300 * MiB, rate_bytes_per_s=20 * MiB, hold_s=60),
            NodeOutcome.COMPLETED_IN_SWAP,
        ),
        # Past the share (pressure at 1181 + 561 MiB, the machine's wall 100 MiB later): memory.
        # available falls below the threshold and stays there, with node swap still free.
        (
            "reclaim above threshold, past the share, held",
            with_reclaim(RECLAIM),
            Fill(1800 * MiB, rate_bytes_per_s=20 * MiB, hold_s=60),
            NodeOutcome.EVICTED,
        ),
        # Past the share in one allocation: the kernel's wall comes before a kubelet pass (the
        # machine's: the 180 MiB baseline outside the pods is more than the 64 MiB reserved).
        (
            "reclaim above threshold, past the share, bulk",
            with_reclaim(RECLAIM),
            Fill(2200 * MiB),
            NodeOutcome.SYSTEM_OOM_KILLED,
        ),
        # Past the share, leaking too fast for a pass between the threshold and the wall.
        (
            "reclaim above threshold, past the share, fast leak",
            with_reclaim(RECLAIM),
            Fill(2200 * MiB, rate_bytes_per_s=20 * MiB),
            NodeOutcome.BORDERLINE,
        ),
        # Threshold above the reclaim point: evicted before anything is swapped.
        (
            "threshold above reclaim",
            with_reclaim(RECLAIM, threshold=200 * MiB),
            Fill(1300 * MiB, rate_bytes_per_s=20 * MiB, hold_s=60),
            NodeOutcome.EVICTED,
        ),
        # Reclaim point unknown: as if at the threshold, nothing swapped first.
        (
            "reclaim unknown",
            with_reclaim(0),
            Fill(1300 * MiB, rate_bytes_per_s=20 * MiB, hold_s=60),
            NodeOutcome.EVICTED,
        ),
    ],
)
def test_the_reclaim_point_decides_whether_swap_comes_first(
    case: str, node: NodeMemory, fill: Fill, expected: NodeOutcome
) -> None:
    assert predict_node_pressure(node, fill).outcome == expected, case


def test_evicted_past_the_share_names_the_node_swap_still_free() -> None:
    node = with_reclaim(RECLAIM)
    prediction = predict_node_pressure(node, Fill(1800 * MiB, rate_bytes_per_s=20 * MiB, hold_s=60))
    room = CAPACITY - 100 * MiB - 180 * MiB
    assert prediction.pressure_at_bytes == room + SHARE_400
    assert prediction.memory_at_pressure_bytes == room
    free = (NODE_SWAP - SHARE_400) // MiB
    assert prediction.explanation.startswith(
        f"Evicted with about {free} MiB of node swap still free"
    )
    assert "starts swapping at memory.available ~160 MiB, above" in prediction.explanation
    assert "does not count swap" in prediction.explanation


def test_threshold_above_reclaim_is_evicted_with_all_swap_free() -> None:
    node = with_reclaim(RECLAIM, threshold=200 * MiB)
    prediction = predict_node_pressure(node, Fill(1300 * MiB, rate_bytes_per_s=20 * MiB, hold_s=60))
    assert prediction.explanation.startswith("Evicted with 2048 MiB of node swap free, none of it")
    assert prediction.pressure_at_bytes == CAPACITY - 200 * MiB - 180 * MiB


def test_completed_in_swap_says_how_much_went_to_swap() -> None:
    node = with_reclaim(RECLAIM)
    prediction = predict_node_pressure(node, Fill(1300 * MiB, rate_bytes_per_s=20 * MiB, hold_s=60))
    swapped = (1300 * MiB - (CAPACITY - RECLAIM - 180 * MiB)) // MiB
    assert f"about {swapped} MiB went to its 561 MiB swap share" in prediction.explanation


@pytest.mark.parametrize(
    ("case", "node", "fill", "bystander_bytes", "request_bytes", "order", "outcome"),
    [
        # Request 600 MiB: at the first pressure the workload is ~100 MiB over its request, the
        # BestEffort bystander 312 MiB over zero, so the bystander goes; its memory back, the
        # 900 MiB fill fits and completes.
        (
            "bystander first saves the workload",
            vm(),
            Fill(912 * MiB, rate_bytes_per_s=5 * MiB, hold_s=30),
            312 * MiB,
            600 * MiB,
            ("be", WORKLOAD_NAME),
            NodeOutcome.COMPLETED,
        ),
        (
            "workload first: furthest over its request",
            vm(),
            Fill(1300 * MiB, rate_bytes_per_s=10 * MiB, hold_s=30),
            100 * MiB,
            400 * MiB,
            (WORKLOAD_NAME, "be"),
            NodeOutcome.EVICTED,
        ),
        # The workload's swap share fills first; at the pressure its memory (not its swap) is
        # what the eviction manager ranks: it holds 657 MiB (1461 - 100 threshold - 180
        # baseline - 524), 257 MiB over its request, the BestEffort bystander 524 MiB over zero.
        # The bystander's memory back, 1312 MiB fits above the reclaim point plus the share.
        (
            "ranked by memory, not swap",
            with_reclaim(RECLAIM),
            Fill(1312 * MiB, rate_bytes_per_s=20 * MiB, hold_s=30),
            524 * MiB,
            400 * MiB,
            ("be", WORKLOAD_NAME),
            NodeOutcome.COMPLETED_IN_SWAP,
        ),
    ],
)
def test_eviction_order_over_the_run(
    case: str,
    node: NodeMemory,
    fill: Fill,
    bystander_bytes: int,
    request_bytes: int,
    order: tuple[str, ...],
    outcome: NodeOutcome,
) -> None:
    bystander = PodMemory("be", QoSClass.BEST_EFFORT, usage_bytes=bystander_bytes)
    run = predict_run(node, fill, [bystander], qos=QoSClass.BURSTABLE, request_bytes=request_bytes)
    evicted = tuple(order[: order.index(WORKLOAD_NAME)])
    assert (run.order, run.evicted_first, run.prediction.outcome) == (order, evicted, outcome), case


@pytest.mark.parametrize(
    ("demand", "outcome"),
    [
        (900 * MiB, NodeOutcome.COMPLETED),
        # Evicted on the VM node past the threshold; on a Docker host nothing evicts.
        (1300 * MiB, NodeOutcome.COMPLETED_IN_SWAP),
        # Past the 561 MiB share that kills or evicts the Kubernetes pod: all 2 GiB are its.
        (2400 * MiB, NodeOutcome.COMPLETED_IN_SWAP),
        (3400 * MiB, NodeOutcome.SYSTEM_OOM_KILLED),
    ],
)
def test_docker_without_a_memory_limit_only_the_kernel_decides(
    demand: int, outcome: NodeOutcome
) -> None:
    host = with_reclaim(RECLAIM, threshold=250 * MiB)
    prediction = docker_fill_prediction(host, demand)
    assert prediction.outcome == outcome
    if outcome == NodeOutcome.COMPLETED_IN_SWAP:
        assert "nothing on a Docker host evicts on memory.available" in prediction.explanation
