"""Parity between Docker and Kubernetes, and the one sentence that says why they differ."""

from __future__ import annotations

import pytest

from oomlab.rules.parity import Parity, compare
from oomlab.rules.results import CgroupVersion, Outcome
from oomlab.rules.semantics import (
    Allowance,
    NodeSwap,
    QoSClass,
    SwapBehavior,
    docker_allowance,
    kubelet_allowance,
)
from oomlab.rules.units import UNLIMITED, parse_docker_size

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


GUARANTEED_500MI = kubelet(500 * MiB, 500 * MiB, QoSClass.GUARANTEED)
"""The seed's pod: request = limit = 500Mi."""
DOCKER_500M_NO_SWAP = docker("500m", "500m")
"""The seed's Docker flags: --memory-swap equals --memory."""
GUARANTEED_NO_SWAP = kubelet(GiB, GiB, QoSClass.GUARANTEED, behavior=SwapBehavior.NO_SWAP)


@pytest.mark.parametrize(
    ("docker_side", "kubernetes_side", "docker_source", "named", "not_named"),
    [
        pytest.param(
            docker("500m", "1g"),
            GUARANTEED_500MI,
            "predicted",
            ["Docker gives 524 MiB of swap, Kubernetes none", "Guaranteed QoS"],
            [],
            id="guaranteed-pod-under-limited-swap-gets-none",
        ),
        pytest.param(
            docker("500m", "1g"),
            kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE, behavior=SwapBehavior.NO_SWAP),
            "observed",
            ["swapBehavior is NoSwap"],
            [],
            id="no-swap-behavior-is-named",
        ),
        pytest.param(
            docker("500m", "1g"),
            kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE, cgroup=CgroupVersion.V1),
            "predicted",
            ["cgroup v1"],
            ["NoSwap"],
            id="cgroup-v1-is-named-before-anything-else",
        ),
        pytest.param(
            docker("500m", "1g"),
            kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE),
            "predicted",
            ["LimitedSwap gives only 21 MiB of swap", "where Docker gives 524 MiB"],
            [],
            id="limited-swap-share-smaller-than-dockers-swap",
        ),
        pytest.param(
            docker("1g", None),
            GUARANTEED_NO_SWAP,
            "predicted",
            ["--memory-swap is unset", "2 x --memory"],
            [],
            id="dockers-2x-rule-is-spelled-out",
        ),
        pytest.param(
            docker("1g", "2g"),
            GUARANTEED_NO_SWAP,
            "predicted",
            [],
            ["2 x"],
            id="explicit-swap-does-not-mention-the-2x-rule",
        ),
        pytest.param(
            docker("1g", "1g"),
            GUARANTEED_500MI,
            "predicted",
            ["Docker's --memory is 1 GiB but the pod's limit is 500 MiB"],
            [],
            id="different-memory-limits-are-named-first",
        ),
    ],
)
def test_docker_completes_where_kubernetes_is_oom_killed_and_says_why(
    docker_side: Allowance,
    kubernetes_side: Allowance,
    docker_source: str,
    named: list[str],
    not_named: list[str],
) -> None:
    result = compare(
        Outcome.COMPLETED,
        docker_side,
        Outcome.OOM_KILLED,
        kubernetes_side,
        docker_source=docker_source,
    )
    assert result.result == Parity.MISMATCH
    assert result.explanation.startswith(
        f"Docker ({docker_source}) completes but Kubernetes is OOM-killed"
    )
    for words in named:
        assert words in result.explanation
    for words in not_named:
        assert words not in result.explanation


def test_limited_swap_share_is_the_pods_share_of_node_swap() -> None:
    k8s = kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE)
    assert k8s.swap_bytes == 250 * MiB * NODE_SWAP // NODE_MEMORY  # about 21 MiB


def test_unset_memory_swap_is_implicit_and_doubles_memory() -> None:
    unset = docker("1g", None)
    assert unset.swap_bytes == GiB and unset.implicit_swap
    assert not docker("1g", "2g").implicit_swap


def test_seed_matches_and_says_both_have_no_swap() -> None:
    result = compare(Outcome.OOM_KILLED, DOCKER_500M_NO_SWAP, Outcome.OOM_KILLED, GUARANTEED_500MI)
    assert result.result == Parity.MATCH
    assert result.explanation == (
        "Both agree: Docker (predicted) is OOM-killed and Kubernetes is OOM-killed "
        "(Docker: 500 MiB + 0 B swap; Kubernetes: 500 MiB + 0 B swap)."
    )


def test_kubernetes_gives_swap_docker_does_not() -> None:
    result = compare(
        Outcome.OOM_KILLED,
        DOCKER_500M_NO_SWAP,
        Outcome.COMPLETED,
        kubelet(250 * MiB, 500 * MiB, QoSClass.BURSTABLE, swap=16 * GiB),
    )
    assert result.result == Parity.MISMATCH
    assert "(LimitedSwap)" in result.explanation
    assert "--memory-swap equals --memory" in result.explanation


@pytest.mark.parametrize(
    ("k8s_outcome", "words"),
    [
        (None, "Kubernetes has no result yet."),
        (Outcome.FAILED, "ended Failed, which says nothing about memory limits"),
        (Outcome.TIMED_OUT, "ended TimedOut"),
    ],
)
def test_unknown_until_kubernetes_decides(k8s_outcome: Outcome | None, words: str) -> None:
    result = compare(Outcome.OOM_KILLED, DOCKER_500M_NO_SWAP, k8s_outcome, GUARANTEED_500MI)
    assert result.result == Parity.UNKNOWN
    assert words in result.explanation


def test_unknown_without_docker_flags() -> None:
    result = compare(None, None, Outcome.OOM_KILLED, None)
    assert result.result == Parity.UNKNOWN
    assert "spec.docker" in result.explanation
