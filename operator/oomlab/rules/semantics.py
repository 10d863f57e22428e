"""The rules: how much memory and swap Docker and the kubelet give a container, and what follows.

Everything here is pure: sizes in bytes in, allowances and predictions with one plain sentence out.
Docker and Kubernetes are two ways to set the same two kernel limits (memory, and memory+swap on
cgroup v1 or swap on cgroup v2); the differences users trip over are all in how each tool derives
them, which is what this module spells out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from oomlab.rules.results import CgroupVersion, Predicted
from oomlab.rules.units import DOCKER_MIN_MEMORY_BYTES, UNLIMITED, human

CRITICAL_PRIORITY = 2_000_000_000
"""Pods at or above this priority (system-cluster-critical, system-node-critical) never get swap."""

DEFAULT_MARGIN = 0.01
"""Demand within this fraction of capacity is too close to call: Borderline."""

PAGE_BYTES = 4096
"""The kernel keeps cgroup memory limits in whole pages (x86-64, arm64 with 4 KiB pages)."""

THP_ALWAYS = "always"


class SwapBehavior(StrEnum):
    NO_SWAP = "NoSwap"
    LIMITED_SWAP = "LimitedSwap"


class QoSClass(StrEnum):
    GUARANTEED = "Guaranteed"
    BURSTABLE = "Burstable"
    BEST_EFFORT = "BestEffort"


class NoSwapCause(StrEnum):
    """Why a container gets no swap: the kubelet's swap eligibility rules (NodeSwap, 1.30+, as in
    its GetContainerSwapBehavior) and Docker's one way of asking for none. The value is the short
    name parity explanations and tables use; :attr:`sentence` says it to a reader."""

    CGROUP_V1 = "cgroup-v1"
    NO_SWAP = "no-swap"
    NODE_NO_SWAP = "node-no-swap"
    GUARANTEED = "guaranteed"
    BEST_EFFORT = "best-effort"
    CRITICAL = "critical"
    NO_REQUEST = "no-request"
    REQUEST_EQUALS_LIMIT = "request-equals-limit"
    DOCKER_EQUAL = "docker-equal"

    @property
    def sentence(self) -> str:
        return NO_SWAP_SENTENCES[self]


NO_SWAP_SENTENCES: dict[NoSwapCause, str] = {
    NoSwapCause.CGROUP_V1: (
        "the node runs cgroup v1, where the kubelet gives containers no swap (it sets "
        "memory+swap equal to the memory limit; swap needs cgroup v2)"
    ),
    NoSwapCause.NO_SWAP: "the kubelet's swapBehavior is NoSwap",
    NoSwapCause.NODE_NO_SWAP: "the node has no swap enabled",
    NoSwapCause.GUARANTEED: (
        "the pod is Guaranteed QoS, and LimitedSwap gives swap only to Burstable pods"
    ),
    NoSwapCause.BEST_EFFORT: (
        "the pod is BestEffort QoS, and LimitedSwap gives swap only to Burstable pods"
    ),
    NoSwapCause.CRITICAL: (
        f"the pod is critical (priority {CRITICAL_PRIORITY:,} or more, or a static or mirror "
        "pod), which never gets swap"
    ),
    NoSwapCause.NO_REQUEST: (
        "the container has no memory request, so its LimitedSwap share is zero"
    ),
    NoSwapCause.REQUEST_EQUALS_LIMIT: (
        "the container's memory request equals its limit, which LimitedSwap excludes"
    ),
    NoSwapCause.DOCKER_EQUAL: "--memory-swap equals --memory, which means no swap in Docker",
}
"""One sentence per cause, shared by the allowance's explanation and parity's why."""


class FlagError(ValueError):
    """A combination of memory flags the tool itself refuses, with Docker's reason."""


@dataclass(frozen=True)
class Allowance:
    """Memory and swap one container may use, and why, as a clause for a sentence.

    ``memory_bytes`` None means no memory limit; ``swap_bytes`` None means swap is not limited by
    the container's settings (only by how much swap the host has).
    """

    memory_bytes: int | None
    swap_bytes: int | None
    why: str
    no_swap_cause: NoSwapCause | None = None
    """When swap is zero: the rule that zeroed it (for parity explanations)."""
    implicit_swap: bool = False
    """Docker only: the swap comes from leaving --memory-swap unset (the 2 x --memory rule)."""


@dataclass(frozen=True)
class Prediction:
    outcome: Predicted
    demand_bytes: int
    capacity_bytes: int | None
    explanation: str


def docker_allowance(
    memory: int | None,
    memory_swap: int | None,
    *,
    swap_accounting: bool = True,
    as_written: tuple[str | None, str | None] = (None, None),
) -> Allowance:
    """Docker's ``--memory`` / ``--memory-swap`` rules, the same on cgroup v1 and v2.

    ``memory_swap`` is memory plus swap; None means the flag was not given, :data:`UNLIMITED`
    means ``-1``. On cgroup v1 runc writes memory+swap to ``memory.memsw.limit_in_bytes``; on v2
    it writes the difference to ``memory.swap.max``; the container sees the same allowance.
    ``as_written`` is the flags' text as the user gave it, quoted back in the explanation.
    """
    mem = _flag(memory, as_written[0])
    if memory is None:
        if memory_swap is not None and memory_swap != UNLIMITED:
            raise FlagError(
                "--memory-swap needs --memory: Docker refuses a memory+swap limit without a "
                "memory limit"
            )
        return Allowance(None, None, "no --memory was given, so the container has no limit")
    if memory < DOCKER_MIN_MEMORY_BYTES:
        raise FlagError(f"--memory {human(memory)} is below Docker's minimum of 6 MiB")
    if not swap_accounting:
        return Allowance(
            memory,
            None,
            f"--memory={mem}; the kernel has no swap accounting, so Docker ignores "
            "--memory-swap and swap is limited only by the host",
        )
    if memory_swap is None:
        return Allowance(
            memory,
            memory,
            f"--memory={mem} with --memory-swap unset, which Docker turns into "
            f"memory+swap = 2 x {human(memory)}, so {human(memory)} of swap",
            implicit_swap=True,
        )
    if memory_swap == UNLIMITED:
        return Allowance(memory, None, f"--memory={mem} with --memory-swap=-1, so unlimited swap")
    if memory_swap < memory:
        raise FlagError(
            f"--memory-swap {human(memory_swap)} is smaller than --memory {human(memory)}: "
            "--memory-swap is memory plus swap, so it must be at least --memory"
        )
    if memory_swap == memory:
        return Allowance(
            memory,
            0,
            f"--memory={mem} with --memory-swap equal to it, which means no swap",
            no_swap_cause=NoSwapCause.DOCKER_EQUAL,
        )
    swap = memory_swap - memory
    return Allowance(
        memory,
        swap,
        f"--memory={mem} with --memory-swap={as_written[1] or human(memory_swap)} = memory + "
        f"swap, so {human(swap)} of swap",
    )


def _flag(value: int | None, text: str | None) -> str:
    """A flag's value as written, with its size when the unit could surprise: ``500m (500 MiB)``."""
    if value is None:
        return "unset"
    if text is None:
        return human(value)
    sized = human(value)
    return text if text.replace(" ", "") == sized.replace(" ", "") else f"{text} ({sized})"


def qos_class(
    memory_request: int | None,
    memory_limit: int | None,
    cpu_request_millis: int | None = None,
    cpu_limit_millis: int | None = None,
) -> QoSClass:
    """The pod QoS class of a single-container pod, as the API server computes it.

    A request that is not set defaults to the limit. Guaranteed needs both CPU and memory limits
    with requests equal to them; no requests or limits at all is BestEffort.
    """
    memory_request = memory_limit if memory_request is None else memory_request
    cpu_request_millis = cpu_limit_millis if cpu_request_millis is None else cpu_request_millis
    if all(v is None for v in (memory_request, memory_limit, cpu_request_millis, cpu_limit_millis)):
        return QoSClass.BEST_EFFORT
    if (
        memory_limit is not None
        and cpu_limit_millis is not None
        and memory_request == memory_limit
        and cpu_request_millis == cpu_limit_millis
    ):
        return QoSClass.GUARANTEED
    return QoSClass.BURSTABLE


@dataclass(frozen=True)
class NodeSwap:
    """What a node offers: its kubelet's swap behaviour, cgroup version and capacities."""

    swap_behavior: SwapBehavior
    cgroup_version: CgroupVersion
    memory_capacity_bytes: int | None
    swap_capacity_bytes: int | None


def kubelet_no_swap_causes(
    memory_request: int | None,
    memory_limit: int | None,
    qos: QoSClass,
    node: NodeSwap,
    *,
    priority: int = 0,
) -> list[NoSwapCause]:
    """Every kubelet rule that denies this container swap, in the order they are named (the
    first is the one an explanation gives); empty when LimitedSwap gives it a share."""
    denied = [
        (node.cgroup_version == CgroupVersion.V1, NoSwapCause.CGROUP_V1),
        (node.swap_behavior == SwapBehavior.NO_SWAP, NoSwapCause.NO_SWAP),
        (not node.swap_capacity_bytes, NoSwapCause.NODE_NO_SWAP),
        (qos == QoSClass.GUARANTEED, NoSwapCause.GUARANTEED),
        (qos == QoSClass.BEST_EFFORT, NoSwapCause.BEST_EFFORT),
        (priority >= CRITICAL_PRIORITY, NoSwapCause.CRITICAL),
        (not memory_request, NoSwapCause.NO_REQUEST),
        (bool(memory_request) and memory_request == memory_limit, NoSwapCause.REQUEST_EQUALS_LIMIT),
    ]
    return [cause for applies, cause in denied if applies]


def kubelet_allowance(
    memory_request: int | None,
    memory_limit: int | None,
    qos: QoSClass,
    node: NodeSwap,
    *,
    priority: int = 0,
) -> Allowance:
    """Swap the kubelet gives one container (NodeSwap, Kubernetes 1.30+).

    LimitedSwap gives a Burstable container ``request / node memory * node swap``; everything
    else gets none. The first rule that zeroes swap is the one named in the explanation.
    """
    limit = human(memory_limit) if memory_limit is not None else "no limit"
    causes = kubelet_no_swap_causes(memory_request, memory_limit, qos, node, priority=priority)
    if causes:
        cause = causes[0]
        return Allowance(memory_limit, 0, f"limit {limit} and no swap: {cause.sentence}", cause)
    assert memory_request  # NO_REQUEST would have been a cause
    if not node.memory_capacity_bytes:
        return Allowance(
            memory_limit, None, "LimitedSwap with unknown node memory: swap share unknown"
        )
    assert node.swap_capacity_bytes  # NODE_NO_SWAP would have been a cause
    share = limited_swap_bytes(memory_request, node.memory_capacity_bytes, node.swap_capacity_bytes)
    return Allowance(
        memory_limit,
        share,
        f"limit {limit} plus {human(share)} of swap: LimitedSwap gives request "
        f"{human(memory_request)} / node memory {human(node.memory_capacity_bytes)} x node swap "
        f"{human(node.swap_capacity_bytes)}",
    )


def limited_swap_bytes(request: int, node_memory: int, node_swap: int) -> int:
    """LimitedSwap's per-container share, truncated to whole bytes like the kubelet does."""
    return math.floor(request / node_memory * node_swap)


def kernel_limit(value: int, page: int = PAGE_BYTES) -> int:
    """A limit as its cgroup file reads back: the kernel stores it in whole pages, rounding down
    (the kubelet writes 587960434 to memory.swap.max, which then reads 587960320)."""
    return value // page * page


def thp_caveat(prediction: Prediction, allowance: Allowance, thp: str | None) -> Prediction:
    """A prediction that counts on swap, qualified by the node's transparent hugepage mode.

    "memory limit + swap limit" assumes swapped-out pages stop counting against the memory limit.
    With THP ``always`` they were seen sitting in the swap cache, charged again, and the pod was
    OOM-killed well before limit + swap; so there a Completed that needs swap is too close to
    call. Predictions that need no swap are returned as they are.
    """
    memory = allowance.memory_bytes
    capacity = prediction.capacity_bytes
    needs_swap = memory is not None and prediction.demand_bytes > memory
    swap_counted = memory is not None and (capacity is None or capacity > memory)
    if not (needs_swap and swap_counted):
        return prediction
    text = prediction.explanation.rstrip(".")
    if thp == THP_ALWAYS:
        completed = prediction.outcome == Predicted.COMPLETED
        outcome = Predicted.BORDERLINE if completed else prediction.outcome
        return Prediction(
            outcome,
            prediction.demand_bytes,
            capacity,
            f"{text}; but the node's transparent hugepages are 'always', where swapped pages can "
            "stay charged to the container (swap cache) and it is killed well before limit + "
            "swap, so that sum is not a safe prediction.",
        )
    note = (
        "the node's transparent hugepage mode is unknown (with 'always' the kernel can kill "
        "well before limit + swap)"
        if thp is None
        else f"transparent hugepages are '{thp}' on the node, so swapped pages leave the limit"
    )
    return Prediction(prediction.outcome, prediction.demand_bytes, capacity, f"{text} ({note}).")


def usable_swap(allowance: Allowance, host_swap_bytes: int | None) -> tuple[int | None, str]:
    """Swap the container can really use: its allowance, capped by what the host has enabled."""
    if allowance.swap_bytes == 0:
        return 0, ""
    if host_swap_bytes is None:
        return allowance.swap_bytes, ""
    if host_swap_bytes == 0:
        return 0, "; but the host has no swap enabled, so none of it exists"
    if allowance.swap_bytes is None or allowance.swap_bytes > host_swap_bytes:
        return host_swap_bytes, f"; the host has only {human(host_swap_bytes)} of swap"
    return allowance.swap_bytes, ""


def predict(
    demand_bytes: int,
    allowance: Allowance,
    *,
    host_swap_bytes: int | None,
    margin: float = DEFAULT_MARGIN,
    subject: str = "Docker",
) -> Prediction:
    """OOMKilled, Completed or Borderline for a workload needing ``demand_bytes`` at its peak."""
    if allowance.memory_bytes is None:
        return Prediction(
            Predicted.COMPLETED,
            demand_bytes,
            None,
            f"{subject}: {allowance.why}; nothing stops the workload short of the host's memory.",
        )
    swap, swap_note = usable_swap(allowance, host_swap_bytes)
    if swap is None:
        return Prediction(
            Predicted.COMPLETED,
            demand_bytes,
            None,
            f"{subject}: {allowance.why}{swap_note}; with unlimited swap the workload's "
            f"{human(demand_bytes)} fits.",
        )
    capacity = allowance.memory_bytes + swap
    gap = capacity - demand_bytes
    needs = f"the workload needs about {human(demand_bytes)} against {human(capacity)}"
    if abs(gap) <= margin * capacity:
        outcome = Predicted.BORDERLINE
        verdict = "too close to call"
    elif gap < 0:
        outcome = Predicted.OOM_KILLED
        verdict = "so the kernel OOM-kills it"
    else:
        outcome = Predicted.COMPLETED
        verdict = "so it completes" + (
            ", partly in swap" if demand_bytes > allowance.memory_bytes else ""
        )
    return Prediction(
        outcome,
        demand_bytes,
        capacity,
        f"{subject}: {allowance.why}{swap_note}; {needs}, {verdict}.",
    )
