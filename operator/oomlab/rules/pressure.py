"""Node memory pressure: for a workload that fills a node, which comes first, the kubelet's
eviction, an OOM kill (in the container's own cgroup, in the pods' cgroup at node allocatable, or
by the node's global OOM killer), or completion; and in which order the kubelet evicts pods.

The kubelet's eviction manager (pkg/kubelet/eviction, v1.34-v1.37) compares ``memory.available``
(node capacity minus the root cgroup's working set: usage less inactive file pages; swap is not in
it) with its hard threshold (``evictionHard: memory.available: 100Mi`` by default) once per
housekeeping interval (10 s), and evicts one pod per pass, ranked by: usage above request first,
then lower priority first, then the larger usage above request.

The node's kernel starts moving anonymous memory to swap at its own level of
``memory.available``, the reclaim point (kswapd wakes at the zones' low watermarks, and the
inactive file pages still resident then count as available): a node fact, measured per node.
Threshold at or above the reclaim point: the kubelet sees pressure before anything is swapped,
so the workload is evicted with all its swap free. Reclaim point above the threshold: the kernel
swaps the workload from there on and ``memory.available`` stays above the threshold until the
workload's LimitedSwap share is full; only then does it fall, to an eviction (node swap still
mostly free) or, when the kubelet's pass comes too late, the kernel's kill.

The kernel's walls, first reached wins: the container's own ``memory.max`` plus its LimitedSwap
``memory.swap.max``; the pods' cgroup (``kubepods``), limited to capacity minus system-reserved
minus kube-reserved; the whole machine (the global OOM killer). Sizes in bytes; pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from oomlab.rules.semantics import QoSClass
from oomlab.rules.units import MiB, human

DEFAULT_EVICTION_HARD_BYTES = 100 * MiB
"""The kubelet's default ``evictionHard`` for ``memory.available`` on Linux."""

HOUSEKEEPING_S = 10.0
"""The eviction manager's monitoring interval (kubelet ``--housekeeping-interval``)."""

EVICTION_SURE_S = 2 * HOUSEKEEPING_S
"""Pressure lasting this long is seen by the kubelet for certain: one pass, plus one interval of
staleness in the stats it reads."""

EVICTION_MISS_S = 1.0
"""Pressure shorter than this is almost never seen by a pass that runs every 10 s."""

OOM_SCORE_ADJ_BEST_EFFORT = 1000
OOM_SCORE_ADJ_GUARANTEED = -997
"""The kubelet's oom_score_adj per QoS class (pkg/kubelet/qos/policy.go); Burstable is
``1000 - 1000 * request / capacity``, clamped to 2..999."""


class NodeOutcome(StrEnum):
    EVICTED = "Evicted"
    OOM_KILLED = "OOMKilled"
    """In the container's own cgroup, at its memory limit plus its swap limit."""
    ALLOCATABLE_OOM_KILLED = "AllocatableOOMKilled"
    """In the pods' cgroup (kubepods) at node allocatable: a kill below the pod's own limit."""
    SYSTEM_OOM_KILLED = "SystemOOMKilled"
    """By the node's global OOM killer (the kubelet posts a SystemOOM event on the Node)."""
    COMPLETED = "Completed"
    COMPLETED_IN_SWAP = "CompletedInSwap"
    """Completed only because swap held what memory could not."""
    BORDERLINE = "Borderline"


KERNEL_KILLS = {
    NodeOutcome.OOM_KILLED,
    NodeOutcome.ALLOCATABLE_OOM_KILLED,
    NodeOutcome.SYSTEM_OOM_KILLED,
}


@dataclass(frozen=True)
class NodeMemory:
    """What the node offers and how its kubelet guards it."""

    capacity_bytes: int
    swap_bytes: int
    """Swap the workload's container may use (its LimitedSwap share; 0 on NoSwap)."""
    node_swap_bytes: int = 0
    """The node's whole swap (nodeInfo.swap.capacity), for the explanation."""
    eviction_hard_bytes: int = DEFAULT_EVICTION_HARD_BYTES
    reserved_bytes: int = 0
    """system-reserved + kube-reserved memory: the pods' cgroup is capacity minus this."""
    baseline_bytes: int = 0
    """The node's working set before the experiment (system, kubelet, runtime, other pods)."""
    reclaim_available_bytes: int = 0
    """memory.available at which the kernel starts swapping anonymous memory (the node's
    reclaim point); 0 when unknown, taken as below the threshold (nothing swapped first)."""

    @property
    def swaps_before_pressure(self) -> bool:
        """Whether the kernel swaps the workload before the kubelet sees memory pressure."""
        return self.swap_bytes > 0 and self.reclaim_available_bytes > self.eviction_hard_bytes

    @property
    def allocatable_bytes(self) -> int:
        return self.capacity_bytes - self.reserved_bytes - self.eviction_hard_bytes

    @property
    def pods_cgroup_bytes(self) -> int:
        return self.capacity_bytes - self.reserved_bytes


@dataclass(frozen=True)
class PodMemory:
    """One pod on the node as the eviction manager and the OOM killer rank it."""

    name: str
    qos: QoSClass
    request_bytes: int = 0
    usage_bytes: int = 0
    """Working set (memory, not swap) at the moment of ranking."""
    priority: int = 0
    swap_bytes: int = 0
    """Swapped-out memory, which the OOM killer counts and the eviction manager does not."""


@dataclass(frozen=True)
class Fill:
    """The node-scale workload: how much it allocates, how fast and for how long it holds it."""

    demand_bytes: int
    limit_bytes: int | None = None
    rate_bytes_per_s: float | None = None
    """None: as fast as the machine allows (a bulk allocation)."""
    hold_s: float = 0.0


@dataclass(frozen=True)
class NodePrediction:
    outcome: NodeOutcome
    explanation: str
    pressure_at_bytes: int | None
    """Demand at which memory.available falls below the threshold (None: never)."""
    kernel_wall_bytes: int | None
    """Demand at which the first kernel OOM kill comes (None: never)."""
    memory_at_pressure_bytes: int | None = None
    """The workload's memory (not swap: what the eviction manager ranks) at that moment."""


def oom_score_adj(pod: PodMemory, capacity_bytes: int) -> int:
    if pod.qos == QoSClass.GUARANTEED:
        return OOM_SCORE_ADJ_GUARANTEED
    if pod.qos == QoSClass.BEST_EFFORT:
        return OOM_SCORE_ADJ_BEST_EFFORT
    adj = 1000 - (1000 * pod.request_bytes) // capacity_bytes
    return min(999, max(2, adj))


def oom_victim(pods: Sequence[PodMemory], capacity_bytes: int, total_bytes: int) -> PodMemory:
    """Whom the kernel's OOM killer picks: the largest badness, memory + swap + oom_score_adj x
    (memory the killer's domain has, RAM + swap) / 1000 (mm/oom_kill.c, oom_badness)."""

    def badness(pod: PodMemory) -> float:
        adj = oom_score_adj(pod, capacity_bytes)
        return pod.usage_bytes + pod.swap_bytes + adj * total_bytes / 1000

    return max(pods, key=badness)


def eviction_order(pods: Sequence[PodMemory]) -> list[PodMemory]:
    """The eviction manager's ranking under memory pressure (rankMemoryPressure): pods using
    more than they requested first, then lower priority, then the larger usage above request.
    QoS class is not a key: a BestEffort pod goes first only because any use exceeds its
    zero request."""
    return sorted(
        pods,
        key=lambda p: (
            not p.usage_bytes > p.request_bytes,
            p.priority,
            -(p.usage_bytes - p.request_bytes),
        ),
    )


def predict_node_pressure(
    node: NodeMemory, fill: Fill, bystanders: Sequence[PodMemory] = ()
) -> NodePrediction:
    """What happens first to the workload ``fill`` on ``node`` with ``bystanders`` resident."""
    held = node.baseline_bytes + sum(b.usage_bytes for b in bystanders)
    # The workload's memory (not swap) at which memory.available drops below the threshold.
    room = node.capacity_bytes - node.eviction_hard_bytes - held
    swapped_first = node.swap_bytes if node.swaps_before_pressure else 0
    # The workload's demand at that moment: its swap share fills first when the kernel swaps
    # before the threshold is reached.
    pressure_at = room + swapped_first
    ram_ceiling = fill.limit_bytes if fill.limit_bytes is not None else fill.demand_bytes
    walls: list[tuple[int, NodeOutcome]] = []
    if fill.limit_bytes is not None:
        walls.append((fill.limit_bytes + node.swap_bytes, NodeOutcome.OOM_KILLED))
    pods_held = sum(b.usage_bytes for b in bystanders)
    if node.reserved_bytes > 0:
        walls.append(
            (
                node.pods_cgroup_bytes - pods_held + node.swap_bytes,
                NodeOutcome.ALLOCATABLE_OOM_KILLED,
            )
        )
    walls.append((node.capacity_bytes - held + node.swap_bytes, NodeOutcome.SYSTEM_OOM_KILLED))
    wall, wall_kill = min(walls)
    if min(ram_ceiling, fill.demand_bytes - swapped_first) <= room:
        return _below_pressure(node, fill, wall, wall_kill, held)
    kill = wall_kill if fill.demand_bytes > wall else None
    seconds_to_wall = _seconds(wall - pressure_at, fill.rate_bytes_per_s)
    seconds_over = _seconds(fill.demand_bytes - pressure_at, fill.rate_bytes_per_s) + fill.hold_s
    window = seconds_to_wall if kill is not None else seconds_over
    pressure = _pressure_sentence(node, room)
    if window >= EVICTION_SURE_S:
        return NodePrediction(
            NodeOutcome.EVICTED,
            f"{_evicted_with(node)}: {pressure}, and the kubelet evicts on memory.available, "
            "which does not count swap.",
            pressure_at,
            wall if kill else None,
            room,
        )
    if kill is not None and window < EVICTION_MISS_S:
        return NodePrediction(
            kill,
            f"{_kill_sentence(kill, node, fill)} before the kubelet's eviction pass "
            f"(every {HOUSEKEEPING_S:.0f} s) could see the pressure: {pressure}, and the "
            f"kernel's wall comes at about {human(wall)}.",
            pressure_at,
            wall,
        )
    if kill is None and window < EVICTION_MISS_S:
        return NodePrediction(
            NodeOutcome.COMPLETED_IN_SWAP,
            f"Completes because swap carried it: {pressure}, but the workload ends within "
            f"{window:.1f} s, before the kubelet's pass (every {HOUSEKEEPING_S:.0f} s) sees it.",
            pressure_at,
            None,
        )
    return NodePrediction(
        NodeOutcome.BORDERLINE,
        f"Too close to call: {pressure} for about {window:.0f} s, a race with the kubelet's "
        f"{HOUSEKEEPING_S:.0f} s eviction pass"
        + (f" and a kernel kill at about {human(wall)}." if kill else "."),
        pressure_at,
        wall if kill else None,
    )


def _reclaim_sentence(node: NodeMemory) -> str:
    relation = "above" if node.swaps_before_pressure else "at or below"
    return (
        f"the kernel starts swapping at memory.available ~{human(node.reclaim_available_bytes)}, "
        f"{relation} the kubelet's {human(node.eviction_hard_bytes)} threshold"
    )


def _pressure_sentence(node: NodeMemory, room: int) -> str:
    falls = (
        f"memory.available falls below the kubelet's {human(node.eviction_hard_bytes)} "
        f"threshold once the workload holds about {human(room)}"
    )
    if node.swaps_before_pressure:
        return (
            f"{_reclaim_sentence(node)}, so the workload's {human(node.swap_bytes)} swap share "
            f"fills first; then {falls} of memory beside it"
        )
    if node.reclaim_available_bytes:
        return (
            f"{falls}, before the kernel's reclaim point (~{human(node.reclaim_available_bytes)})"
        )
    return falls


def _evicted_with(node: NodeMemory) -> str:
    if not node.node_swap_bytes:
        return "Evicted with no swap"
    if node.swaps_before_pressure:
        free = max(0, node.node_swap_bytes - node.swap_bytes)
        return f"Evicted with about {human(free)} of node swap still free"
    if node.reclaim_available_bytes:
        return f"Evicted with {human(node.node_swap_bytes)} of node swap free, none of it used"
    return (
        f"Evicted with {human(node.node_swap_bytes)} of node swap present (the container may use "
        f"{human(node.swap_bytes)} of it)"
    )


def _below_pressure(
    node: NodeMemory, fill: Fill, wall: int, wall_kill: NodeOutcome, held: int
) -> NodePrediction:
    """The workload never brings memory.available down to the threshold: it fits, the kernel's
    swapping keeps it above, or its limit keeps it below, and its own cgroup decides."""
    room = node.capacity_bytes - node.eviction_hard_bytes - held
    if fill.limit_bytes is None:
        swapped_from = node.capacity_bytes - node.reclaim_available_bytes - held
        if node.swaps_before_pressure and fill.demand_bytes > swapped_from:
            return NodePrediction(
                NodeOutcome.COMPLETED_IN_SWAP,
                f"Completes because swap carried it: {_reclaim_sentence(node)}, so about "
                f"{human(fill.demand_bytes - swapped_from)} went to its "
                f"{human(node.swap_bytes)} swap share and memory.available never fell below "
                "the threshold.",
                None,
                None,
            )
        return NodePrediction(
            NodeOutcome.COMPLETED,
            f"Completes in memory: {human(fill.demand_bytes)} fits in the {human(room)} the node "
            "has above its eviction threshold.",
            None,
            None,
        )
    headroom = f"its {human(fill.limit_bytes)} limit keeps the node above the eviction threshold"
    if fill.demand_bytes > wall:
        return NodePrediction(
            wall_kill,
            f"{_kill_sentence(wall_kill, node, fill)}: {headroom}, and "
            f"{human(fill.demand_bytes)} is more than the limit plus its "
            f"{human(node.swap_bytes)} of swap.",
            None,
            wall,
        )
    if fill.demand_bytes > fill.limit_bytes:
        return NodePrediction(
            NodeOutcome.COMPLETED_IN_SWAP,
            f"Completes because swap carried it: {headroom}, and the "
            f"{human(fill.demand_bytes - fill.limit_bytes)} over the limit fits in its "
            f"{human(node.swap_bytes)} of swap.",
            None,
            None,
        )
    return NodePrediction(
        NodeOutcome.COMPLETED,
        f"Completes in memory: {headroom}, and the workload fits under it.",
        None,
        None,
    )


def _kill_sentence(kill: NodeOutcome, node: NodeMemory, fill: Fill) -> str:
    if kill == NodeOutcome.OOM_KILLED:
        return "OOM-killed in its own cgroup at its limit plus its swap"
    if kill == NodeOutcome.ALLOCATABLE_OOM_KILLED:
        return (
            f"OOM-killed in the pods' cgroup at node allocatable ({human(node.pods_cgroup_bytes)}: "
            "capacity minus system- and kube-reserved)"
        )
    return "Killed by the node's global OOM killer"


def _seconds(num_bytes: int, rate: float | None) -> float:
    if rate is None or rate <= 0:
        return 0.0
    return max(0, num_bytes) / rate


@dataclass(frozen=True)
class PressureRun:
    """The whole predicted run: the pods the kubelet evicts before the workload's fate is
    decided, in order, and that fate."""

    prediction: NodePrediction
    evicted_first: tuple[str, ...]
    """Bystanders evicted before the workload (each eviction frees what it held)."""
    order: tuple[str, ...]
    """The eviction manager's ranking at the first pressure, the workload named ``workload``."""


WORKLOAD = "workload"


def predict_run(
    node: NodeMemory,
    fill: Fill,
    bystanders: Sequence[PodMemory],
    *,
    qos: QoSClass,
    request_bytes: int | None,
    priority: int = 0,
) -> PressureRun:
    """:func:`predict_node_pressure`, then the kubelet's passes: while the pod it would evict
    first is a bystander, that bystander goes and its memory is free again (one pod per pass),
    and the workload's fate is predicted anew with the bystanders left."""
    left = list(bystanders)
    evicted: list[str] = []
    first_order: tuple[str, ...] = ()
    while True:
        prediction = predict_node_pressure(node, fill, left)
        usage = prediction.memory_at_pressure_bytes
        if prediction.outcome != NodeOutcome.EVICTED or usage is None:
            return PressureRun(prediction, tuple(evicted), first_order)
        workload = PodMemory(WORKLOAD, qos, request_bytes or 0, usage, priority)
        order = eviction_order([workload, *left])
        first_order = first_order or tuple(p.name for p in order)
        if order[0].name == WORKLOAD:
            return PressureRun(prediction, tuple(evicted), first_order)
        evicted.append(order[0].name)
        left = [b for b in left if b.name != order[0].name]
