"""The Docker view of a node-scale fill: the seed's original setting, a container with no
``--memory`` on a host with swap (pure).

No kubelet stands between such a container and the host's memory: nothing watches
``memory.available`` and nothing evicts. The container's cgroup has no limit, so the host's
kernel alone decides: it swaps from its reclaim point on, and its global OOM killer acts only
when memory and swap are both gone (the container, the largest process with ``oom_score_adj`` 0,
is its victim; dockerd runs at -500).
"""

from __future__ import annotations

from oomlab.rules.pressure import NodeMemory, NodeOutcome, NodePrediction
from oomlab.rules.units import human

FLAGS = "(no --memory)"


def docker_fill_prediction(host: NodeMemory, demand_bytes: int) -> NodePrediction:
    """What happens to ``demand_bytes`` allocated by a container with no ``--memory`` on a
    machine like ``host`` (its capacity, baseline, whole swap and reclaim point; its kubelet
    thresholds and swap share do not apply)."""
    wall = host.capacity_bytes - host.baseline_bytes + host.node_swap_bytes
    swapped_from = host.capacity_bytes - host.reclaim_available_bytes - host.baseline_bytes
    nobody = "nothing on a Docker host evicts on memory.available"
    if demand_bytes > wall:
        return NodePrediction(
            NodeOutcome.SYSTEM_OOM_KILLED,
            f"Killed by the host's global OOM killer: {nobody}, and {human(demand_bytes)} is "
            f"more than the {human(wall)} of memory and swap the host has left.",
            None,
            wall,
        )
    if demand_bytes > swapped_from and host.node_swap_bytes:
        return NodePrediction(
            NodeOutcome.COMPLETED_IN_SWAP,
            f"Completes because swap carried it: {nobody}; the kernel swaps from "
            f"memory.available ~{human(host.reclaim_available_bytes)}, so about "
            f"{human(demand_bytes - swapped_from)} of it goes to the host's "
            f"{human(host.node_swap_bytes)} of swap (no share: the container may use it all).",
            None,
            None,
        )
    return NodePrediction(
        NodeOutcome.COMPLETED,
        f"Completes in memory: {human(demand_bytes)} fits in the {human(swapped_from)} the host "
        "has before its kernel starts swapping.",
        None,
        None,
    )
