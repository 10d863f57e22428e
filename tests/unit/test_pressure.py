"""Node memory pressure: eviction vs OOM kill vs swap, table by table, with the VM node's numbers
(1536 MiB guest: capacity 1,531,936,768 B, 2 GiB swap, evictionHard memory.available 100Mi)."""

from __future__ import annotations

import pytest

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


def test_a_bystander_evicted_first_can_save_the_workload() -> None:
    # Request 600 MiB: at the first pressure the workload is ~100 MiB over its request, the
    # BestEffort bystander 312 MiB over zero, so the bystander goes; its memory back, the
    # 900 MiB fill fits and completes.
    bystander = PodMemory("be", QoSClass.BEST_EFFORT, usage_bytes=312 * MiB)
    run = predict_run(
        vm(),
        Fill(912 * MiB, rate_bytes_per_s=5 * MiB, hold_s=30),
        [bystander],
        qos=QoSClass.BURSTABLE,
        request_bytes=600 * MiB,
    )
    assert run.order == ("be", WORKLOAD_NAME)
    assert run.evicted_first == ("be",)
    assert run.prediction.outcome == NodeOutcome.COMPLETED


def test_the_workload_first_when_it_is_furthest_over_its_request() -> None:
    bystander = PodMemory("be", QoSClass.BEST_EFFORT, usage_bytes=100 * MiB)
    run = predict_run(
        vm(),
        Fill(1300 * MiB, rate_bytes_per_s=10 * MiB, hold_s=30),
        [bystander],
        qos=QoSClass.BURSTABLE,
        request_bytes=400 * MiB,
    )
    assert run.order == (WORKLOAD_NAME, "be") and run.evicted_first == ()
    assert run.prediction.outcome == NodeOutcome.EVICTED
