"""Parity between Docker and Kubernetes, and the one sentence that says why they differ."""

from __future__ import annotations

import pytest

from oomlab.parity import Parity, compare
from oomlab.results import CgroupVersion, Outcome
from oomlab.semantics import (
    Allowance,
    NodeSwap,
    QoSClass,
    SwapBehavior,
    docker_allowance,
    kubelet_allowance,
)
from oomlab.units import UNLIMITED, parse_docker_size

MiB = 2**20
GiB = 2**30
NODE_MEMORY = 24 * GiB
NODE_SWAP = 2 * GiB


def docker(memory: str, memory_swap: str | None) -> Allowance:
    swap = (
        None
        if memory_swap is None
        else (UNLIMITED if memory_swap == "-1" else parse_docker_size(memory_swap))
    )
    return docker_allowance(parse_docker_size(memory), swap)


def kubelet(
    request: int,
    limit: int,
    qos: QoSClass,
    *,
    behavior: SwapBehavior = SwapBehavior.LIMITED_SWAP,
    cgroup: CgroupVersion = CgroupVersion.V2,
    swap: int = NODE_SWAP,
) -> Allowance:
    return kubelet_allowance(request, limit, qos, NodeSwap(behavior, cgroup, NODE_MEMORY, swap))


def test_guaranteed_pod_under_limited_swap_gets_none() -> None:
    result = compare(
        Outcome.COMPLETED,
        docker("500m", "1g"),
        Outcome.OOM_KILLED,
        kubelet(500 * MiB, 500 * MiB, QoSClass.GUARANTEED),
    )
    assert result.result == Parity.MISMATCH
    assert result.explanation.startswith(
        "Docker (predicted) completes but Kubernetes is OOM-killed"
    )
    assert "Docker gives 524 MiB of swap, Kubernetes none" in result.explanation
    assert "Guaranteed QoS" in result.explanation


def test_no_swap_behavior_is_named() -> None:
    result = compare(
        Outcome.COMPLETED,
        docker("500m", "1g"),
        Outcome.OOM_KILLED,
        kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE, behavior=SwapBehavior.NO_SWAP),
        docker_source="observed",
    )
    assert result.result == Parity.MISMATCH
    assert result.explanation.startswith("Docker (observed) completes")
    assert "swapBehavior is NoSwap" in result.explanation


def test_cgroup_v1_is_named_before_anything_else() -> None:
    result = compare(
        Outcome.COMPLETED,
        docker("500m", "1g"),
        Outcome.OOM_KILLED,
        kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE, cgroup=CgroupVersion.V1),
    )
    assert result.result == Parity.MISMATCH
    assert "cgroup v1" in result.explanation
    assert "NoSwap" not in result.explanation


def test_limited_swap_share_smaller_than_dockers_swap() -> None:
    k8s = kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE)
    assert k8s.swap_bytes == 250 * MiB * NODE_SWAP // NODE_MEMORY  # about 21 MiB
    result = compare(Outcome.COMPLETED, docker("500m", "1g"), Outcome.OOM_KILLED, k8s)
    assert result.result == Parity.MISMATCH
    assert "LimitedSwap gives only 21 MiB of swap" in result.explanation
    assert "where Docker gives 524 MiB" in result.explanation


def test_dockers_2x_rule_is_spelled_out() -> None:
    unset = docker("1g", None)
    assert unset.swap_bytes == GiB and unset.implicit_swap
    result = compare(
        Outcome.COMPLETED,
        unset,
        Outcome.OOM_KILLED,
        kubelet(GiB, GiB, QoSClass.GUARANTEED, behavior=SwapBehavior.NO_SWAP),
    )
    assert result.result == Parity.MISMATCH
    assert "--memory-swap is unset" in result.explanation
    assert "2 x --memory" in result.explanation


def test_explicit_swap_does_not_mention_the_2x_rule() -> None:
    explicit = docker("1g", "2g")
    assert not explicit.implicit_swap
    result = compare(
        Outcome.COMPLETED,
        explicit,
        Outcome.OOM_KILLED,
        kubelet(GiB, GiB, QoSClass.GUARANTEED, behavior=SwapBehavior.NO_SWAP),
    )
    assert "2 x" not in result.explanation


def test_seed_matches_and_says_both_have_no_swap() -> None:
    result = compare(
        Outcome.OOM_KILLED,
        docker("500m", "500m"),
        Outcome.OOM_KILLED,
        kubelet(500 * MiB, 500 * MiB, QoSClass.GUARANTEED),
    )
    assert result.result == Parity.MATCH
    assert result.explanation == (
        "Both agree: Docker (predicted) is OOM-killed and Kubernetes is OOM-killed "
        "(Docker: 500 MiB + 0 B swap; Kubernetes: 500 MiB + 0 B swap)."
    )


def test_kubernetes_gives_swap_docker_does_not() -> None:
    result = compare(
        Outcome.OOM_KILLED,
        docker("500m", "500m"),
        Outcome.COMPLETED,
        kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE, swap=16 * GiB),
    )
    assert result.result == Parity.MISMATCH
    assert "(LimitedSwap)" in result.explanation
    assert "--memory-swap equals --memory" in result.explanation


def test_different_memory_limits_are_named_first() -> None:
    result = compare(
        Outcome.COMPLETED,
        docker("1g", "1g"),
        Outcome.OOM_KILLED,
        kubelet(500 * MiB, 500 * MiB, QoSClass.GUARANTEED),
    )
    assert "Docker's --memory is 1 GiB but the pod's limit is 500 MiB" in result.explanation


@pytest.mark.parametrize(
    ("k8s_outcome", "words"),
    [
        (None, "Kubernetes has no result yet."),
        (Outcome.FAILED, "ended Failed, which says nothing about memory limits"),
        (Outcome.TIMED_OUT, "ended TimedOut"),
    ],
)
def test_unknown_until_kubernetes_decides(k8s_outcome: Outcome | None, words: str) -> None:
    result = compare(
        Outcome.OOM_KILLED,
        docker("500m", "500m"),
        k8s_outcome,
        kubelet(500 * MiB, 500 * MiB, QoSClass.GUARANTEED),
    )
    assert result.result == Parity.UNKNOWN
    assert words in result.explanation


def test_unknown_without_docker_flags() -> None:
    result = compare(None, None, Outcome.OOM_KILLED, None)
    assert result.result == Parity.UNKNOWN
    assert "spec.docker" in result.explanation
