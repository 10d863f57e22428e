"""The Kubernetes side of an experiment: what its pod says happened, and what the node's
kubelet rules predict (swap behaviour, cgroup version, QoS, the node's capacity)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from oomlab.experiment import KIND, ExperimentSpec
from oomlab.operator.config import OperatorConfig
from oomlab.operator.phases import status_of
from oomlab.operator.resize_view import kubelet_view
from oomlab.rules.classify import Phase, PodVerdict
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.results import CgroupVersion, Outcome, Progress
from oomlab.rules.semantics import (
    Allowance,
    NodeSwap,
    Prediction,
    QoSClass,
    SwapBehavior,
    kernel_limit,
    kubelet_allowance,
    predict,
    thp_caveat,
)
from oomlab.rules.timestamps import parse_time, rfc3339
from oomlab.rules.units import human
from oomlab.rules.workload import swap_limit_from_report


@dataclass(frozen=True)
class OwnerRef:
    name: str
    uid: str


def owner_experiment(pod: Mapping[str, Any]) -> OwnerRef | None:
    """The OOMExperiment that owns this pod, from its ownerReferences."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and str(ref.get("apiVersion", "")).startswith("oomlab.dev/"):
            return OwnerRef(name=ref["name"], uid=ref["uid"])
    return None


# --------------------------------------------------------------------------------------------
# the node's rules


def resolve_cgroup_version(
    config: OperatorConfig,
    workload_report: Mapping[str, Any] | None,
    recorded: Any = None,
    node: NodeFacts | None = None,
) -> CgroupVersion:
    """The node's cgroup version: configured, else the workload's own report, else the node's
    label, else as recorded."""
    if config.node_cgroup_version is not None:
        return config.node_cgroup_version
    reported = str((workload_report or {}).get("version", "")).lower().removeprefix("v")
    if reported in ("1", "2"):
        return CgroupVersion(f"v{reported}")
    if node is not None and node.cgroup_version is not None:
        return node.cgroup_version
    try:
        return CgroupVersion(recorded)
    except ValueError:
        return CgroupVersion.UNKNOWN


def resolve_swap_behavior(
    config: OperatorConfig,
    recorded: Any,
    node: NodeFacts | None = None,
    asked: SwapBehavior | None = None,
) -> SwapBehavior:
    """The node's own label first (the cluster's setup knows its kubelets), then what the spec
    asked for (the pod can only land on such a node), then what the status already records,
    then the operator's configuration."""
    if node is not None and node.swap_behavior is not None:
        return node.swap_behavior
    if asked is not None:
        return asked
    try:
        return SwapBehavior(recorded)
    except ValueError:
        return config.swap_behavior


def resolve_qos(value: Any, spec: ExperimentSpec) -> QoSClass:
    try:
        return QoSClass(value)
    except ValueError:
        return spec.qos


def kubernetes_allowance(
    spec: ExperimentSpec,
    *,
    swap_behavior: SwapBehavior,
    cgroup: CgroupVersion,
    node: NodeFacts | None,
    qos: QoSClass,
    priority: int = 0,
) -> Allowance:
    node_swap = NodeSwap(
        swap_behavior=swap_behavior,
        cgroup_version=cgroup,
        memory_capacity_bytes=node.memory_capacity_bytes if node else None,
        swap_capacity_bytes=node.swap_capacity_bytes if node else None,
    )
    return kubelet_allowance(
        spec.request_bytes if spec.request_bytes is not None else spec.limit_bytes,
        spec.limit_bytes,
        qos,
        node_swap,
        priority=priority,
    )


def kubernetes_prediction(
    spec: ExperimentSpec, allowance: Allowance, node: NodeFacts
) -> Prediction:
    prediction = predict(
        spec.workload.demand_bytes(),
        allowance,
        host_swap_bytes=node.swap_capacity_bytes,
        subject="Kubernetes",
    )
    return thp_caveat(prediction, allowance, node.thp)


def predicted_swap_limit(allowance: Allowance) -> int | None:
    """What the container's swap limit file will read: the kubelet's share in whole pages.
    None when the allowance is not a number (unlimited or unknown)."""
    return None if allowance.swap_bytes is None else kernel_limit(allowance.swap_bytes)


def swap_limit_check(predicted: int | None, observed: int | None) -> tuple[bool | None, str]:
    """Does the swap limit the kernel really set (as the workload read it; -1 = max) agree with
    the prediction to the page? (None, "") while either is unknown; a sentence when not."""
    if predicted is None or observed is None:
        return None, ""
    if observed == predicted:
        return True, ""
    seen = (
        "no swap limit (max)"
        if observed < 0
        else f"a swap limit of {observed} bytes ({human(observed)})"
    )
    return False, (
        f"The kernel set {seen} for the container, not the predicted {predicted} bytes "
        f"({human(predicted)}): the node's kubelet does not follow the rules assumed here "
        "(swapBehavior, capacities or QoS)."
    )


# --------------------------------------------------------------------------------------------
# what the pod says


@dataclass(frozen=True)
class PodFacts:
    """What the pod document says about where and how the experiment runs."""

    name: str | None = None
    node_name: str | None = None
    qos_class: str | None = None
    priority: int = 0
    resize: Mapping[str, Any] = field(default_factory=dict)
    """What the pod says about an in-place resize (resize_view.kubelet_view)."""


def pod_facts(pod: Mapping[str, Any]) -> PodFacts:
    spec = pod.get("spec") or {}
    return PodFacts(
        name=(pod.get("metadata") or {}).get("name"),
        node_name=spec.get("nodeName"),
        qos_class=(pod.get("status") or {}).get("qosClass"),
        priority=int(spec.get("priority") or 0),
        resize=kubelet_view(pod),
    )


@dataclass(frozen=True)
class Observation:
    """One new piece of knowledge about the Kubernetes side (everything optional)."""

    phase: Phase | None = None
    reason: str | None = None
    message: str | None = None
    outcome: Outcome | None = None
    exit_code: int | None = None
    signal: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    progress: Progress | None = None
    pod: PodFacts = field(default_factory=PodFacts)


def observation_from_verdict(
    verdict: PodVerdict, pod: Mapping[str, Any], progress: Progress | None
) -> Observation:
    started = parse_time(verdict.started_at)
    finished = parse_time(verdict.finished_at)
    duration = (finished - started).total_seconds() if started and finished else None
    return Observation(
        phase=verdict.phase,
        reason=verdict.reason,
        message=verdict.message,
        outcome=verdict.outcome,
        exit_code=verdict.exit_code,
        signal=verdict.signal,
        started_at=verdict.started_at,
        finished_at=verdict.finished_at,
        duration_s=duration,
        progress=progress,
        pod=pod_facts(pod),
    )


def timed_out_observation(
    spec: ExperimentSpec, body: Mapping[str, Any], progress: Progress | None, now: datetime
) -> Observation:
    """The operator's own timeout: the pod ran (or waited) past spec.timeoutSeconds."""
    recorded = status_of(body).get("kubernetes") or {}
    started = parse_time(recorded.get("startedAt"))
    since = "started" if started else "was created"
    start = started or parse_time((body.get("metadata") or {}).get("creationTimestamp")) or now
    return Observation(
        phase=Phase.TIMED_OUT,
        reason="TimedOut",
        message=(
            f"The experiment passed its timeout of {spec.timeout_s}s since the pod {since}; "
            "the pod was deleted."
        ),
        outcome=Outcome.TIMED_OUT,
        finished_at=rfc3339(now),
        duration_s=(now - start).total_seconds() if started else None,
        progress=progress,
    )


def progress_fields(progress: Progress | None) -> dict[str, Any]:
    """status.kubernetes fields from memhog's progress lines."""
    if progress is None:
        return {}
    return {
        "allocatedBytes": progress.allocated_bytes,
        "processedBytes": progress.processed_bytes,
        "peakBytes": progress.peak_rss_bytes or progress.peak_allocated_bytes,
        "swapLimitBytes": swap_limit_from_report(progress.cgroup),
        "swapBytesAtEnd": progress.swap.swap_bytes_at_end if progress.swap else None,
    }
