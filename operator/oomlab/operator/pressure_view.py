"""status.nodePressure from what the operator read: the node's thresholds, samples of its memory
and swap, its conditions, the bystander pods; and the bystanders' Pods. No I/O here."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oomlab.experiment import (
    ANNOTATION_EXPERIMENT,
    LABEL_EXPERIMENT_UID,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    POD_APP,
    ExperimentSpec,
    least_privilege_pod_spec,
    memhog_container,
    pod_name,
)
from oomlab.operator.twin import LABEL_ROLE
from oomlab.rules.docker_pressure import FLAGS as DOCKER_FLAGS
from oomlab.rules.docker_pressure import docker_fill_prediction
from oomlab.rules.nodes import NodeFacts, placement_for
from oomlab.rules.pressure import (
    DEFAULT_EVICTION_HARD_BYTES,
    Fill,
    NodeMemory,
    PodMemory,
    PressureRun,
    predict_run,
)
from oomlab.rules.pressure_spec import EVICTION_HARD_LABEL, RECLAIM_POINT_LABEL, Bystander
from oomlab.rules.results import CgroupVersion, Progress
from oomlab.rules.semantics import NodeSwap, QoSClass, SwapBehavior, kubelet_allowance
from oomlab.rules.units import SizeError, format_binary, parse_k8s_quantity
from oomlab.rules.workload import INTERPRETER_OVERHEAD_BYTES, Mode, WorkloadSpec

ROLE_BYSTANDER = "bystander"
HOSTNAME_LABEL = "kubernetes.io/hostname"
GUARANTEED_HEADROOM_BYTES = 64 * 2**20
"""A Guaranteed bystander's limit above what it holds, so it is never OOM-killed by itself."""


@dataclass(frozen=True)
class Thresholds:
    eviction_hard_bytes: int
    reserved_bytes: int
    source: str
    """configz (the kubelet said so), label (the node's setup said so) or default (assumed)."""
    reclaim_available_bytes: int = 0
    """The node's reclaim point (its label); 0: unknown."""

    def to_status(self) -> dict[str, Any]:
        status = {
            "memoryAvailable": format_binary(self.eviction_hard_bytes),
            "reservedMemory": format_binary(self.reserved_bytes),
            "source": self.source,
        }
        if self.reclaim_available_bytes:
            status["reclaimPoint"] = format_binary(self.reclaim_available_bytes)
        return status


def _bytes(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return parse_k8s_quantity(str(value))
    except SizeError:
        return None


def thresholds_from(configz: Mapping[str, Any] | None, labels: Mapping[str, str]) -> Thresholds:
    """evictionHard memory.available and system+kube reserved memory, from the kubelet's
    /configz when the operator may read it, else the node's label, else the kubelet default;
    the reclaim point from the node's label (the kubelet does not know it)."""
    reclaim = _bytes(labels.get(RECLAIM_POINT_LABEL)) or 0
    config = (configz or {}).get("kubeletconfig") or {}
    hard = _bytes((config.get("evictionHard") or {}).get("memory.available"))
    if hard is not None:
        reserved = sum(
            _bytes((config.get(key) or {}).get("memory")) or 0
            for key in ("systemReserved", "kubeReserved")
        )
        return Thresholds(hard, reserved, "configz", reclaim)
    labelled = _bytes(labels.get(EVICTION_HARD_LABEL))
    if labelled is not None:
        return Thresholds(labelled, 0, "label", reclaim)
    return Thresholds(DEFAULT_EVICTION_HARD_BYTES, 0, "default", reclaim)


@dataclass(frozen=True)
class Sample:
    at: str | None
    available_bytes: int | None
    working_set_bytes: int | None
    swap_used_bytes: int | None
    swap_free_bytes: int | None

    def to_status(self) -> dict[str, Any]:
        return {
            "source": "kubelet",
            "at": self.at,
            "memoryAvailableBytes": self.available_bytes,
            "nodeSwapUsedBytes": self.swap_used_bytes,
            "nodeSwapFreeBytes": self.swap_free_bytes,
        }


def sample_from_summary(summary: Mapping[str, Any]) -> Sample:
    """The kubelet's /stats/summary node entry: memory.availableBytes is exactly what its
    eviction manager compares with memory.available's threshold."""
    node = summary.get("node") or {}
    memory = node.get("memory") or {}
    swap = node.get("swap") or {}
    return Sample(
        at=memory.get("time"),
        available_bytes=memory.get("availableBytes"),
        working_set_bytes=memory.get("workingSetBytes"),
        swap_used_bytes=swap.get("swapUsageBytes"),
        swap_free_bytes=swap.get("swapAvailableBytes"),
    )


def condition(node: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def node_ready(node: Mapping[str, Any]) -> bool:
    ready = condition(node, "Ready")
    return ready is not None and ready.get("status") == "True"


def fill_workload(spec: ExperimentSpec, capacity_bytes: int) -> WorkloadSpec:
    """The workload with its size set to the fill (a share of this node, or an amount)."""
    assert spec.node_pressure is not None
    size = spec.node_pressure.fill_for(capacity_bytes)
    return dataclasses.replace(spec.workload, size_bytes=size)


def pod_memory(
    name: str, qos: QoSClass, request: int | None, usage: int, priority: int = 0
) -> PodMemory:
    return PodMemory(name, qos, request_bytes=request or 0, usage_bytes=usage, priority=priority)


def bystander_request(bystander: Bystander) -> int | None:
    if bystander.qos == QoSClass.BEST_EFFORT:
        return None
    if bystander.qos == QoSClass.GUARANTEED:
        return bystander.size_bytes + GUARANTEED_HEADROOM_BYTES
    return bystander.request_bytes or bystander.size_bytes // 2


def node_memory(
    spec: ExperimentSpec, node: NodeFacts, thresholds: Thresholds, baseline_bytes: int
) -> NodeMemory:
    """The node as the pressure rules see it, with this experiment's LimitedSwap share."""
    assert node.memory_capacity_bytes
    capacity = node.memory_capacity_bytes
    allowance = kubelet_allowance(
        spec.request_bytes,
        spec.limit_bytes,
        spec.qos,
        NodeSwap(
            swap_behavior=node.swap_behavior or SwapBehavior.NO_SWAP,
            cgroup_version=node.cgroup_version or CgroupVersion.V1,
            memory_capacity_bytes=capacity,
            swap_capacity_bytes=node.swap_capacity_bytes,
        ),
    )
    return NodeMemory(
        capacity_bytes=capacity,
        swap_bytes=allowance.swap_bytes or 0,
        node_swap_bytes=node.swap_capacity_bytes or 0,
        eviction_hard_bytes=thresholds.eviction_hard_bytes,
        reserved_bytes=thresholds.reserved_bytes,
        baseline_bytes=baseline_bytes,
        reclaim_available_bytes=thresholds.reclaim_available_bytes,
    )


def predict_for(
    spec: ExperimentSpec,
    node: NodeFacts,
    thresholds: Thresholds,
    baseline_bytes: int,
    bystander_names: Sequence[str],
) -> PressureRun:
    """The node-pressure prediction for this experiment on this node, bystanders included."""
    assert spec.node_pressure is not None
    memory = node_memory(spec, node, thresholds, baseline_bytes)
    workload = spec.workload
    rate = None
    if workload.mode == Mode.LEAK and workload.step_bytes and workload.interval_s:
        rate = workload.step_bytes / workload.interval_s
    bystanders = [
        pod_memory(name, b.qos, bystander_request(b), b.size_bytes + INTERPRETER_OVERHEAD_BYTES)
        for name, b in zip(bystander_names, spec.node_pressure.bystanders, strict=True)
    ]
    fill = Fill(workload.demand_bytes(), spec.limit_bytes, rate, workload.hold_s)
    return predict_run(memory, fill, bystanders, qos=spec.qos, request_bytes=spec.request_bytes)


def docker_for(
    spec: ExperimentSpec, node: NodeFacts, thresholds: Thresholds, baseline_bytes: int
) -> dict[str, Any]:
    """status.nodePressure.docker: the same fill in a container with no --memory on a machine
    like this node (the seed's setting), predicted."""
    host = node_memory(spec, node, thresholds, baseline_bytes)
    prediction = docker_fill_prediction(host, spec.workload.demand_bytes())
    return {
        "flags": DOCKER_FLAGS,
        "hostSwapBytes": host.node_swap_bytes,
        "predictedOutcome": prediction.outcome.value,
        "explanation": prediction.explanation,
    }


def bystander_pods(
    name: str, namespace: str, uid: str, spec: ExperimentSpec, node_name: str
) -> list[dict[str, Any]]:
    """One pod per bystander: memhog holding its size for the experiment's whole time, on the
    workload's node, with the QoS class asked for."""
    assert spec.node_pressure is not None
    pods = []
    placement = placement_for(spec.swap_behavior)
    for index, bystander in enumerate(spec.node_pressure.bystanders):
        hold = WorkloadSpec(Mode.BULK, bystander.size_bytes, hold_s=spec.timeout_s)
        request = bystander_request(bystander)
        resources: dict[str, Any] = {}
        if bystander.qos == QoSClass.GUARANTEED:
            both = {"memory": str(request), "cpu": "50m"}
            resources = {"requests": both, "limits": dict(both)}
        elif bystander.qos == QoSClass.BURSTABLE:
            resources = {"requests": {"memory": str(request)}}
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": bystander_pod_name(name, uid, index),
                    "namespace": namespace,
                    "labels": {
                        LABEL_NAME: POD_APP,
                        LABEL_MANAGED_BY: "oomlab-operator",
                        LABEL_EXPERIMENT_UID: uid,
                        LABEL_ROLE: ROLE_BYSTANDER,
                    },
                    "annotations": {ANNOTATION_EXPERIMENT: name},
                },
                "spec": {
                    **least_privilege_pod_spec(
                        spec.timeout_s, memhog_container(spec, hold.args(), resources)
                    ),
                    "nodeSelector": {HOSTNAME_LABEL: node_name},
                    "tolerations": placement.tolerations,
                },
            }
        )
    return pods


def bystander_pod_name(name: str, uid: str, index: int) -> str:
    return pod_name(name, uid, prefix=f"oomx-by{index}")


def is_bystander(pod: Mapping[str, Any]) -> bool:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_ROLE) == ROLE_BYSTANDER


def bystander_record(pod: Mapping[str, Any]) -> dict[str, Any]:
    """A bystander as status.nodePressure.bystanders lists it."""
    status = pod.get("status") or {}
    ended = next(
        (
            c.get("lastTransitionTime")
            for c in status.get("conditions") or []
            if c.get("type") == "DisruptionTarget" and c.get("status") == "True"
        ),
        None,
    )
    for container in status.get("containerStatuses") or []:
        ended = ended or ((container.get("state") or {}).get("terminated") or {}).get("finishedAt")
    return {
        "pod": (pod.get("metadata") or {}).get("name"),
        "qosClass": status.get("qosClass"),
        "phase": status.get("phase"),
        "reason": status.get("reason"),
        "message": status.get("message"),
        "endedAt": ended if status.get("phase") in ("Failed", "Succeeded") else None,
    }


def observed_order(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Pods the kubelet evicted, in the order it did (by the time each ended)."""
    evicted = [r for r in records if r.get("reason") == "Evicted"]
    return [str(r["pod"]) for r in sorted(evicted, key=lambda r: str(r.get("endedAt") or ""))]


def pressure_times(
    samples: Sequence[tuple[str, Mapping[str, Any] | None]],
) -> dict[str, Any]:
    """MemoryPressure's True and False times, from the node's condition as sampled
    (time of sampling, the condition): since = the transition to True, until = back to False."""
    since = until = None
    for _, cond in samples:
        if cond is None:
            continue
        if cond.get("status") == "True":
            since = since or cond.get("lastTransitionTime")
        elif since is not None and cond.get("status") == "False":
            until = cond.get("lastTransitionTime")
    return {"since": since, "until": until}


def sample_before(samples: Sequence[Sample], moment: str | None) -> Sample | None:
    """The last sample taken at or before ``moment`` (RFC 3339 strings compare in time order
    when both are UTC with a Z), else the last one."""
    if not samples:
        return None
    if moment:
        earlier = [s for s in samples if s.at and s.at <= moment]
        if earlier:
            return earlier[-1]
    return samples[-1]


def workload_swap_bytes(progress: Progress | None) -> int | None:
    """The workload's own swap as its last JSON line with a cgroup read says (memory.swap.current,
    else memory.swap.peak); None when no line says."""
    cgroup = (progress.cgroup if progress else None) or {}
    held = cgroup.get("swap_usage_bytes")
    if held is None:
        held = cgroup.get("swap_peak_bytes")
    return held if isinstance(held, int) else None


def workload_swap_view(progress: Progress | None, node: NodeFacts | None) -> dict[str, Any]:
    """Without the kubelet's summary (neither through the API server's proxy nor from the kubelet):
    the workload's own swap from its last JSON line, and the node's free swap estimated as its
    capacity minus that (an upper bound: nothing else's swap is known)."""
    held = workload_swap_bytes(progress)
    view: dict[str, Any] = {"source": "workload", "workloadSwapBytes": held}
    if held is not None and node is not None and node.swap_capacity_bytes is not None:
        view["nodeSwapFreeBytes"] = node.swap_capacity_bytes - held
    return view
