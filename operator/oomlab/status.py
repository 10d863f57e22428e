"""An OOMExperiment's ``.status``, built from what is known: pure functions, dicts in, dicts out.

Every builder takes the experiment as it is now (``body``, a dict as the API returns it) plus one
new piece of knowledge (the spec was accepted, the pod changed, the timeout passed, a Docker run
was recorded) and returns the *whole desired status*. :func:`status_patch` turns current and
desired into the smallest JSON merge patch, which is empty when nothing changed. The same builders
serve the operator and ``oomlab parity``, so Docker, Kubernetes and parity are always computed by
one set of rules.

Phases only move forward (Pending -> Running -> a terminal phase) and the first terminal phase
sticks: a late pod event (the pod deleted after a timeout, say) cannot rewrite a result.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from oomlab.classify import Phase, PodVerdict
from oomlab.config import OperatorConfig
from oomlab.parity import Parity, ParityResult, compare
from oomlab.pods import KIND, ExperimentSpec
from oomlab.results import CgroupVersion, Outcome, Predicted, Progress, RunResult
from oomlab.semantics import (
    Allowance,
    FlagError,
    NodeSwap,
    Prediction,
    QoSClass,
    SwapBehavior,
    docker_allowance,
    kubelet_allowance,
    predict,
)
from oomlab.units import UNLIMITED, SizeError, parse_k8s_quantity
from oomlab.workload import swap_limit_from_report

CONDITION_VALID = "Valid"
CONDITION_POD_CREATED = "PodCreated"
CONDITION_FINISHED = "Finished"
CONDITION_PARITY_KNOWN = "ParityKnown"

SOURCE_PREDICTED = "Predicted"
SOURCE_OBSERVED = "Observed"

_PHASE_RANK = {Phase.PENDING: 1, Phase.RUNNING: 2}
_TERMINAL_RANK = 3

_PREDICTED_OUTCOME = {
    Predicted.COMPLETED: Outcome.COMPLETED,
    Predicted.OOM_KILLED: Outcome.OOM_KILLED,
}


# --------------------------------------------------------------------------------------------
# small readers


def rfc3339(moment: datetime) -> str:
    """``2026-11-25T20:30:00Z``: the timestamp format Kubernetes writes and accepts."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def status_of(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(body.get("status") or {})


def phase_of(status: Mapping[str, Any]) -> Phase | None:
    try:
        return Phase(str(status.get("phase")))
    except ValueError:
        return None


def is_terminal(body: Mapping[str, Any]) -> bool:
    phase = phase_of(status_of(body))
    return phase is not None and phase.terminal


def _outcome(value: Any) -> Outcome | None:
    try:
        return Outcome(value)
    except ValueError:
        return None


def advance_phase(current: Phase | None, proposed: Phase) -> Phase:
    """Phases move forward only; the first terminal phase is final."""
    if current is None:
        return proposed
    rank_now = _TERMINAL_RANK if current.terminal else _PHASE_RANK[current]
    if rank_now == _TERMINAL_RANK:
        return current
    rank_new = _TERMINAL_RANK if proposed.terminal else _PHASE_RANK[proposed]
    return proposed if rank_new > rank_now else current


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
# node facts


@dataclass(frozen=True)
class NodeFacts:
    name: str
    memory_capacity_bytes: int | None = None
    swap_capacity_bytes: int | None = None
    swap_behavior: SwapBehavior | None = None
    """From the node's ``oomlab.dev/swap-behavior`` label, when its cluster's setup put one."""


SWAP_BEHAVIOR_LABEL = "oomlab.dev/swap-behavior"


def node_facts_from_node(node: Mapping[str, Any]) -> NodeFacts:
    """Memory capacity and ``status.nodeInfo.swap.capacity`` (NodeSwap, 1.30+) of a Node."""
    node_status = node.get("status") or {}
    memory: int | None = None
    raw_memory = (node_status.get("capacity") or {}).get("memory")
    if raw_memory is not None:
        try:
            memory = parse_k8s_quantity(raw_memory, field="capacity.memory")
        except SizeError:
            memory = None
    swap_info = (node_status.get("nodeInfo") or {}).get("swap")
    swap: int | None = None
    if isinstance(swap_info, Mapping):
        capacity = swap_info.get("capacity")
        swap = int(capacity) if isinstance(capacity, int | float) else 0
    labels = (node.get("metadata") or {}).get("labels") or {}
    try:
        behavior: SwapBehavior | None = SwapBehavior(str(labels.get(SWAP_BEHAVIOR_LABEL, "")))
    except ValueError:
        behavior = None
    return NodeFacts(
        name=str((node.get("metadata") or {}).get("name", "")),
        memory_capacity_bytes=memory,
        swap_capacity_bytes=swap,
        swap_behavior=behavior,
    )


# --------------------------------------------------------------------------------------------
# conditions


def set_condition(
    conditions: list[dict[str, Any]] | None,
    *,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """A new list with ``type_`` set; ``lastTransitionTime`` is kept when the status is the same."""
    value = "True" if status else "False"
    result = [dict(c) for c in conditions or []]
    existing = next((c for c in result if c.get("type") == type_), None)
    condition: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": rfc3339(now),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    if existing is None:
        result.append(condition)
        return result
    if existing.get("status") == value and existing.get("lastTransitionTime"):
        condition["lastTransitionTime"] = existing["lastTransitionTime"]
    existing.clear()
    existing.update(condition)
    return result


def condition_of(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


# --------------------------------------------------------------------------------------------
# Docker


@dataclass(frozen=True)
class DockerView:
    """spec.docker seen through Docker's rules: the status section and what parity needs."""

    section: dict[str, Any] | None
    outcome: Outcome | None
    allowance: Allowance | None
    source: str = SOURCE_PREDICTED
    refused: str | None = None


def docker_view(
    spec: ExperimentSpec, config: OperatorConfig, observed: Mapping[str, Any] | None
) -> DockerView:
    """Docker's predicted outcome for spec.docker, or the observed one once a run is recorded."""
    flags = spec.docker
    if flags is None:
        return DockerView(None, None, None)
    try:
        allowance = docker_allowance(
            flags.memory_bytes,
            flags.memory_swap_bytes,
            as_written=(flags.memory, flags.memory_swap),
        )
    except FlagError as exc:
        sentence = f"Docker refuses {flags.cli()}: {exc}."
        refused = {
            "outcome": Outcome.REFUSED.value,
            "source": SOURCE_PREDICTED,
            "predictedOutcome": Outcome.REFUSED.value,
            "explanation": sentence,
        }
        return DockerView(refused, Outcome.REFUSED, None, refused=sentence)
    prediction = predict(
        spec.workload.demand_bytes(),
        allowance,
        host_swap_bytes=config.docker_host_swap_bytes,
        subject="Docker",
    )
    section: dict[str, Any] = {
        "predictedOutcome": prediction.outcome.value,
        "explanation": prediction.explanation,
        "memoryBytes": allowance.memory_bytes,
        "memorySwapBytes": _memory_swap_bytes(allowance),
        "swapBytes": allowance.swap_bytes,
    }
    observed_outcome = _outcome((observed or {}).get("outcome"))
    if observed is not None and observed_outcome is not None:
        section.update(
            outcome=observed_outcome.value, source=SOURCE_OBSERVED, observed=dict(observed)
        )
        return DockerView(_compact(section), observed_outcome, allowance, SOURCE_OBSERVED)
    section.update(outcome=prediction.outcome.value, source=SOURCE_PREDICTED)
    outcome = _PREDICTED_OUTCOME.get(prediction.outcome)
    return DockerView(_compact(section), outcome, allowance, SOURCE_PREDICTED)


def _memory_swap_bytes(allowance: Allowance) -> int | None:
    if allowance.memory_bytes is None:
        return None
    if allowance.swap_bytes is None:
        return UNLIMITED
    return allowance.memory_bytes + allowance.swap_bytes


def docker_observation(result: RunResult, now: datetime) -> dict[str, Any]:
    """status.docker.observed for one recorded Docker run."""
    progress = result.progress
    return _compact(
        {
            "outcome": result.outcome.value,
            "exitCode": result.exit_code,
            "oomKilled": result.oom_killed,
            "allocatedBytes": progress.allocated_bytes,
            "peakBytes": result.peak_usage_bytes
            or progress.peak_rss_bytes
            or progress.peak_allocated_bytes,
            "durationSeconds": None if result.duration_s is None else round(result.duration_s, 3),
            "runtime": result.runtime or result.host.runtime,
            "engineVersion": result.host.engine_version,
            "cgroupVersion": result.host.cgroup_version.value,
            "hostSwapBytes": result.host.swap_total_bytes,
            "recordedAt": rfc3339(now),
            "host": result.host.hostname,
        }
    )


# --------------------------------------------------------------------------------------------
# Kubernetes


def resolve_cgroup_version(
    config: OperatorConfig, workload_report: Mapping[str, Any] | None, recorded: Any = None
) -> CgroupVersion:
    """The node's cgroup version: configured, else the workload's own report, else as recorded."""
    if config.node_cgroup_version is not None:
        return config.node_cgroup_version
    reported = str((workload_report or {}).get("version", "")).lower().removeprefix("v")
    if reported in ("1", "2"):
        return CgroupVersion(f"v{reported}")
    try:
        return CgroupVersion(recorded)
    except ValueError:
        return CgroupVersion.UNKNOWN


def _swap_behavior(
    config: OperatorConfig, recorded: Any, node: NodeFacts | None = None
) -> SwapBehavior:
    """The node's own label first (the cluster's setup knows its kubelets), then what the status
    already records, then the operator's configuration."""
    if node is not None and node.swap_behavior is not None:
        return node.swap_behavior
    try:
        return SwapBehavior(recorded)
    except ValueError:
        return config.swap_behavior


def _qos(value: Any, spec: ExperimentSpec) -> QoSClass:
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
    return predict(
        spec.workload.demand_bytes(),
        allowance,
        host_swap_bytes=node.swap_capacity_bytes,
        subject="Kubernetes",
    )


@dataclass(frozen=True)
class PodFacts:
    """What the pod document says about where and how the experiment runs."""

    name: str | None = None
    node_name: str | None = None
    qos_class: str | None = None
    priority: int = 0


def pod_facts(pod: Mapping[str, Any]) -> PodFacts:
    spec = pod.get("spec") or {}
    return PodFacts(
        name=(pod.get("metadata") or {}).get("name"),
        node_name=spec.get("nodeName"),
        qos_class=(pod.get("status") or {}).get("qosClass"),
        priority=int(spec.get("priority") or 0),
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


def _progress_fields(progress: Progress | None) -> dict[str, Any]:
    if progress is None:
        return {}
    return {
        "allocatedBytes": progress.allocated_bytes,
        "processedBytes": progress.processed_bytes,
        "peakBytes": progress.peak_rss_bytes or progress.peak_allocated_bytes,
        "swapLimitBytes": swap_limit_from_report(progress.cgroup),
    }


# --------------------------------------------------------------------------------------------
# parity


def parity_of(docker: DockerView, k8s_outcome: Outcome | None, k8s: Allowance) -> ParityResult:
    if docker.refused is not None:
        return ParityResult(
            Parity.UNKNOWN, f"{docker.refused} There is no Docker run to compare with."
        )
    if docker.section is not None and docker.outcome is None:
        return ParityResult(
            Parity.UNKNOWN,
            "Docker's outcome is too close to call from the rules ("
            + str(docker.section.get("explanation", "")).rstrip(".")
            + "); record a real run with `oomlab parity NAME`.",
        )
    source = "observed" if docker.source == SOURCE_OBSERVED else "predicted"
    return compare(docker.outcome, docker.allowance, k8s_outcome, k8s, docker_source=source)


# --------------------------------------------------------------------------------------------
# the builders


def _generation(body: Mapping[str, Any]) -> int | None:
    value = (body.get("metadata") or {}).get("generation")
    return int(value) if value is not None else None


def assemble(
    body: Mapping[str, Any],
    spec: ExperimentSpec,
    config: OperatorConfig,
    now: datetime,
    *,
    observation: Observation | None = None,
    node: NodeFacts | None = None,
    pod_created: tuple[str, str] | None = None,
    docker_observed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The desired status of a valid experiment, given one new observation.

    ``pod_created`` is (reason, message) for the PodCreated condition; ``docker_observed`` a new
    status.docker.observed (else the recorded one, if any, is kept).
    """
    current = status_of(body)
    generation = _generation(body)
    recorded_k8s: dict[str, Any] = dict(current.get("kubernetes") or {})
    old_phase = phase_of(current)
    if old_phase == Phase.INVALID:
        return current
    accepted = old_phase is None or not old_phase.terminal
    obs = observation if observation is not None and accepted else Observation()

    phase: Phase = old_phase or Phase.PENDING
    message = current.get("message") or "Creating the experiment's pod."
    if obs.phase is not None:
        phase = advance_phase(old_phase, obs.phase)
        if phase == obs.phase and obs.message:
            message = obs.message

    progress = obs.progress
    cgroup = resolve_cgroup_version(
        config, progress.cgroup if progress else None, recorded_k8s.get("cgroupVersion")
    )
    swap_behavior = _swap_behavior(config, recorded_k8s.get("swapBehavior"), node)
    qos = _qos(obs.pod.qos_class or recorded_k8s.get("qosClass"), spec)
    allowance = kubernetes_allowance(
        spec,
        swap_behavior=swap_behavior,
        cgroup=cgroup,
        node=node,
        qos=qos,
        priority=obs.pod.priority,
    )
    k8s: dict[str, Any] = {
        "podName": obs.pod.name,
        "nodeName": obs.pod.node_name,
        "qosClass": qos.value,
        "swapBehavior": swap_behavior.value,
        "cgroupVersion": cgroup.value,
        "startedAt": obs.started_at,
        **_progress_fields(progress),
    }
    if node is not None:
        prediction = kubernetes_prediction(spec, allowance, node)
        k8s.update(
            predictedSwapBytes=allowance.swap_bytes,
            predictedOutcome=prediction.outcome.value,
            explanation=prediction.explanation,
        )
    if obs.phase is not None and obs.phase.terminal and phase == obs.phase:
        k8s.update(
            outcome=obs.outcome.value if obs.outcome else None,
            exitCode=obs.exit_code,
            reason=obs.reason,
            signal=obs.signal,
            finishedAt=obs.finished_at,
            durationSeconds=None if obs.duration_s is None else round(obs.duration_s, 3),
        )
    merged_k8s = {**recorded_k8s, **_compact(k8s)}

    recorded_docker = current.get("docker") or {}
    observed = docker_observed if docker_observed is not None else recorded_docker.get("observed")
    docker = docker_view(spec, config, observed)
    parity = parity_of(docker, _outcome(merged_k8s.get("outcome")), allowance)

    conditions = set_condition(
        current.get("conditions"),
        type_=CONDITION_VALID,
        status=True,
        reason="SpecValid",
        message="The spec is valid.",
        now=now,
        generation=generation,
    )
    created = condition_of(current, CONDITION_POD_CREATED)
    if pod_created is None and obs.pod.name and (created is None or created["status"] != "True"):
        pod_created = ("Created", f"Pod {obs.pod.name} runs the experiment.")
    if pod_created is not None:
        conditions = set_condition(
            conditions,
            type_=CONDITION_POD_CREATED,
            status=True,
            reason=pod_created[0],
            message=pod_created[1],
            now=now,
            generation=generation,
        )
    conditions = _finished(conditions, phase, message, now, generation)
    conditions = set_condition(
        conditions,
        type_=CONDITION_PARITY_KNOWN,
        status=parity.result != Parity.UNKNOWN,
        reason=parity.result.value,
        message=parity.explanation,
        now=now,
        generation=generation,
    )

    desired = copy.deepcopy(current)
    desired.update(
        phase=phase.value,
        message=message,
        observedGeneration=generation,
        conditions=conditions,
        kubernetes=merged_k8s,
        parity={"result": parity.result.value, "explanation": parity.explanation},
    )
    if docker.section is not None:
        desired["docker"] = docker.section
    return _compact(desired)


def _finished(
    conditions: list[dict[str, Any]],
    phase: Phase,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    return set_condition(
        conditions,
        type_=CONDITION_FINISHED,
        status=phase.terminal,
        reason=phase.value,
        message=message,
        now=now,
        generation=generation,
    )


def rejected_status(
    body: Mapping[str, Any],
    *,
    phase: Phase,
    reason: str,
    message: str,
    now: datetime,
    spec_valid: bool,
    spec: ExperimentSpec | None = None,
    config: OperatorConfig | None = None,
) -> dict[str, Any]:
    """Invalid (or Failed) before any pod ran: a bad spec, or the API server refused the pod.

    With ``spec`` (the spec itself was fine) the Docker prediction is still written.
    """
    current = status_of(body)
    generation = _generation(body)
    if spec is not None and config is not None:
        current = assemble(body, spec, config, now)
    old_phase = phase_of(current)
    if old_phase is not None and old_phase.terminal:
        return current
    conditions = set_condition(
        current.get("conditions"),
        type_=CONDITION_VALID,
        status=spec_valid,
        reason="SpecValid" if spec_valid else reason,
        message="The spec is valid." if spec_valid else message,
        now=now,
        generation=generation,
    )
    if spec_valid:
        conditions = set_condition(
            conditions,
            type_=CONDITION_POD_CREATED,
            status=False,
            reason=reason,
            message=message,
            now=now,
            generation=generation,
        )
    conditions = _finished(conditions, phase, message, now, generation)
    desired = copy.deepcopy(current)
    desired.update(
        phase=phase.value, message=message, observedGeneration=generation, conditions=conditions
    )
    if "parity" not in desired:
        desired["parity"] = {
            "result": Parity.UNKNOWN.value,
            "explanation": "The experiment did not run on Kubernetes.",
        }
    return _compact(desired)


def invalid_spec_message(field_path: str, message: str) -> str:
    sentence = message.rstrip(".")
    return f"{field_path}: {sentence[:1].upper()}{sentence[1:]}."


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


# --------------------------------------------------------------------------------------------
# patches, transitions, deadlines


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch that turns ``current`` into ``desired`` (keys only added/changed)."""
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = status_patch(old, value)
            if nested:
                patch[key] = nested
        elif value != old:
            patch[key] = value
    return patch


def phase_transition(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[Phase | None, Phase] | None:
    """(old, new) when the phase changed between two statuses."""
    old, new = phase_of(before), phase_of(after)
    if new is None or old == new:
        return None
    return old, new


def timeout_deadline(body: Mapping[str, Any], spec: ExperimentSpec) -> datetime | None:
    """timeoutSeconds after the container started, or after creation if it never started."""
    recorded = status_of(body).get("kubernetes") or {}
    start = parse_time(recorded.get("startedAt")) or parse_time(
        (body.get("metadata") or {}).get("creationTimestamp")
    )
    return None if start is None else start + timedelta(seconds=spec.timeout_s)


def cleanup_deadline(body: Mapping[str, Any], spec: ExperimentSpec) -> datetime | None:
    """When a finished experiment's pod goes (ttlSecondsAfterFinished), or None to keep it."""
    if spec.ttl_after_finished_s is None or not is_terminal(body):
        return None
    status = status_of(body)
    finished = parse_time((status.get("kubernetes") or {}).get("finishedAt"))
    if finished is None:
        condition = condition_of(status, CONDITION_FINISHED) or {}
        finished = parse_time(condition.get("lastTransitionTime"))
    if finished is None:
        return None
    return finished + timedelta(seconds=int(spec.ttl_after_finished_s))


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop None values (one level): the CRD's integers and strings are not nullable."""
    return {k: v for k, v in data.items() if v is not None}
