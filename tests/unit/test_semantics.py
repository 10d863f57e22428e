"""The swap rules, table by table, with the worked examples of Docker's and Kubernetes' docs."""

from __future__ import annotations

import pytest

from oomlab.rules.results import CgroupVersion, Predicted
from oomlab.rules.semantics import (
    NO_SWAP_SENTENCES,
    FlagError,
    NodeSwap,
    NoSwapCause,
    QoSClass,
    SwapBehavior,
    docker_allowance,
    kubelet_allowance,
    kubelet_no_swap_causes,
    limited_swap_bytes,
    predict,
    qos_class,
)
from oomlab.rules.units import UNLIMITED, parse_docker_size
from oomlab.rules.workload import Mode, WorkloadSpec

MiB = 2**20
GiB = 2**30


def d(text: str) -> int:
    return parse_docker_size(text)


@pytest.mark.parametrize(
    ("memory", "memory_swap", "expected_swap"),
    [
        # Docker docs: --memory=300m --memory-swap=1g -> 300m memory and 700m swap.
        ("300m", "1g", 724 * MiB),
        # Docker docs: memory-swap unset -> as much swap as memory (2 x 300m in all).
        ("300m", None, 300 * MiB),
        # Docker docs: equal values -> no swap.
        ("300m", "300m", 0),
        # the seed pair
        ("500m", "500m", 0),
        ("500m", "1g", 524 * MiB),
    ],
)
def test_docker_swap_rules(memory: str, memory_swap: str | None, expected_swap: int) -> None:
    allowance = docker_allowance(d(memory), None if memory_swap is None else d(memory_swap))
    assert allowance.memory_bytes == d(memory)
    assert allowance.swap_bytes == expected_swap


def test_docker_minus_one_is_unlimited_swap() -> None:
    allowance = docker_allowance(d("500m"), UNLIMITED)
    assert allowance.swap_bytes is None
    assert "unlimited" in allowance.why


def test_docker_unset_rule_is_named_in_the_explanation() -> None:
    assert "2 x 500 MiB" in docker_allowance(d("500m"), None).why


def test_docker_refuses_swap_below_memory() -> None:
    with pytest.raises(FlagError, match="at least --memory"):
        docker_allowance(d("500m"), d("100m"))


def test_docker_refuses_swap_without_memory_and_tiny_memory() -> None:
    with pytest.raises(FlagError, match="needs --memory"):
        docker_allowance(None, d("1g"))
    with pytest.raises(FlagError, match="6 MiB"):
        docker_allowance(d("4m"), None)


def test_docker_without_swap_accounting_ignores_memory_swap() -> None:
    assert docker_allowance(d("500m"), d("500m"), swap_accounting=False).swap_bytes is None


@pytest.mark.parametrize(
    ("request_", "limit", "cpu_req", "cpu_lim", "expected"),
    [
        (500 * MiB, 500 * MiB, 250, 250, QoSClass.GUARANTEED),
        (None, 500 * MiB, None, 250, QoSClass.GUARANTEED),  # requests default to limits
        (250 * MiB, 500 * MiB, 250, 250, QoSClass.BURSTABLE),
        (500 * MiB, 500 * MiB, None, None, QoSClass.BURSTABLE),  # memory only: not Guaranteed
        (None, None, None, None, QoSClass.BEST_EFFORT),
    ],
)
def test_qos(
    request_: int | None,
    limit: int | None,
    cpu_req: int | None,
    cpu_lim: int | None,
    expected: QoSClass,
) -> None:
    assert qos_class(request_, limit, cpu_req, cpu_lim) == expected


V2_LIMITED = NodeSwap(SwapBehavior.LIMITED_SWAP, CgroupVersion.V2, 8 * GiB, 4 * GiB)


def test_limited_swap_formula_worked_example() -> None:
    # request 2Gi on a node with 8Gi memory and 4Gi swap: 2/8 of 4Gi = 1Gi.
    assert limited_swap_bytes(2 * GiB, 8 * GiB, 4 * GiB) == GiB
    allowance = kubelet_allowance(2 * GiB, 4 * GiB, QoSClass.BURSTABLE, V2_LIMITED)
    assert allowance.swap_bytes == GiB
    assert allowance.memory_bytes == 4 * GiB


@pytest.mark.parametrize(
    ("node", "qos", "request_", "limit", "priority", "cause"),
    [
        (
            NodeSwap(SwapBehavior.LIMITED_SWAP, CgroupVersion.V1, 8 * GiB, 4 * GiB),
            QoSClass.BURSTABLE,
            GiB,
            2 * GiB,
            0,
            "cgroup-v1",
        ),
        (
            NodeSwap(SwapBehavior.NO_SWAP, CgroupVersion.V2, 8 * GiB, 4 * GiB),
            QoSClass.BURSTABLE,
            GiB,
            2 * GiB,
            0,
            "no-swap",
        ),
        (
            NodeSwap(SwapBehavior.LIMITED_SWAP, CgroupVersion.V2, 8 * GiB, 0),
            QoSClass.BURSTABLE,
            GiB,
            2 * GiB,
            0,
            "node-no-swap",
        ),
        (V2_LIMITED, QoSClass.GUARANTEED, GiB, GiB, 0, "guaranteed"),
        (V2_LIMITED, QoSClass.BEST_EFFORT, None, None, 0, "best-effort"),
        (V2_LIMITED, QoSClass.BURSTABLE, GiB, 2 * GiB, 2_000_000_000, "critical"),
        (V2_LIMITED, QoSClass.BURSTABLE, GiB, GiB, 0, "request-equals-limit"),
    ],
)
def test_kubelet_zero_swap_rules(
    node: NodeSwap,
    qos: QoSClass,
    request_: int | None,
    limit: int | None,
    priority: int,
    cause: str,
) -> None:
    allowance = kubelet_allowance(request_, limit, qos, node, priority=priority)
    assert allowance.swap_bytes == 0
    assert allowance.no_swap_cause == cause
    assert allowance.why.endswith(NoSwapCause(cause).sentence)
    assert kubelet_no_swap_causes(request_, limit, qos, node, priority=priority)[0] == cause


def test_every_no_swap_cause_has_one_sentence() -> None:
    assert set(NO_SWAP_SENTENCES) == set(NoSwapCause)
    assert len(set(NO_SWAP_SENTENCES.values())) == len(NoSwapCause)


def test_every_rule_that_denies_swap_is_listed_first_one_first() -> None:
    node = NodeSwap(SwapBehavior.NO_SWAP, CgroupVersion.V1, 8 * GiB, 0)
    causes = kubelet_no_swap_causes(GiB, GiB, QoSClass.GUARANTEED, node, priority=2_000_000_000)
    assert causes == [
        NoSwapCause.CGROUP_V1,
        NoSwapCause.NO_SWAP,
        NoSwapCause.NODE_NO_SWAP,
        NoSwapCause.GUARANTEED,
        NoSwapCause.CRITICAL,
        NoSwapCause.REQUEST_EQUALS_LIMIT,
    ]


def test_a_burstable_pod_with_a_request_below_its_limit_is_eligible() -> None:
    assert kubelet_no_swap_causes(GiB, 2 * GiB, QoSClass.BURSTABLE, V2_LIMITED) == []


SEED = WorkloadSpec(Mode.BULK, 1000 * MiB, 500 * MiB)
STREAM = WorkloadSpec(Mode.STREAMING, 1000 * MiB, 50 * MiB, window=2)


@pytest.mark.parametrize(
    ("workload", "memory", "memory_swap", "host_swap", "expected"),
    [
        (SEED, "500m", "500m", 2 * GiB, Predicted.OOM_KILLED),
        (SEED, "500m", "1g", 2 * GiB, Predicted.COMPLETED),
        (SEED, "500m", None, 2 * GiB, Predicted.OOM_KILLED),  # 2x rule: 1000 MiB < demand
        (SEED, "500m", "1000m", 2 * GiB, Predicted.OOM_KILLED),
        (SEED, "500m", "-1", 2 * GiB, Predicted.COMPLETED),
        (SEED, "1g", "1g", 2 * GiB, Predicted.COMPLETED),
        (SEED, "500m", "1g", 0, Predicted.OOM_KILLED),  # swap allowed but none on the host
        (STREAM, "500m", "500m", 0, Predicted.COMPLETED),
        (SEED, "500m", "-1", 0, Predicted.OOM_KILLED),
    ],
)
def test_predictions_match_the_seed_table(
    workload: WorkloadSpec,
    memory: str,
    memory_swap: str | None,
    host_swap: int,
    expected: Predicted,
) -> None:
    swap = None if memory_swap is None else (UNLIMITED if memory_swap == "-1" else d(memory_swap))
    allowance = docker_allowance(d(memory), swap)
    prediction = predict(workload.demand_bytes(), allowance, host_swap_bytes=host_swap)
    assert prediction.outcome == expected, prediction.explanation


def test_borderline_within_margin() -> None:
    allowance = docker_allowance(d("500m"), d("1000m"))
    prediction = predict(1000 * MiB, allowance, host_swap_bytes=GiB)
    assert prediction.outcome == Predicted.BORDERLINE


def test_explanations_are_one_sentence_that_names_the_rule() -> None:
    prediction = predict(
        SEED.demand_bytes(), docker_allowance(d("500m"), None), host_swap_bytes=2 * GiB
    )
    assert prediction.explanation.count(". ") == 0
    assert prediction.explanation.endswith(".")
    assert "--memory-swap unset" in prediction.explanation
    assert "OOM-kills" in prediction.explanation


def test_no_host_swap_is_explained() -> None:
    prediction = predict(
        SEED.demand_bytes(), docker_allowance(d("500m"), d("1g")), host_swap_bytes=0
    )
    assert "no swap enabled" in prediction.explanation


def test_explanations_quote_the_flags_as_written_with_their_size() -> None:
    why = docker_allowance(d("500m"), d("1g"), as_written=("500m", "1g")).why
    assert "--memory=500m (500 MiB)" in why
    assert "--memory-swap=1g = memory + swap" in why
    assert "524 MiB of swap" in why
    # a spelling that already says its size is not repeated
    assert (
        "--memory=500MiB with"
        in docker_allowance(d("500MiB"), None, as_written=("500MiB", None)).why
    )
