"""An OOMExperiment's ``.status``, assembled from what is known: pure, dicts in, dicts out.

Every builder takes the experiment as it is now (``body``, a dict as the API returns it) plus one
new piece of knowledge (the spec was accepted, the pod changed, the timeout passed) and returns the
*whole desired status*; :func:`status_patch` turns current and desired into the smallest JSON
merge patch, which is empty when nothing changed. Only the operator calls these, with its own
configuration: a Docker run handed over by ``oomlab parity`` is read from the experiment's
annotation (:mod:`oomlab.operator.docker_view`) each time the status is assembled.

The parts live next door: :mod:`oomlab.operator.phases` (phase order, deadlines),
:mod:`oomlab.operator.conditions`, :mod:`oomlab.operator.kubernetes_view` (pod and node rules),
:mod:`oomlab.operator.docker_view`, :mod:`oomlab.rules.nodes`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oomlab.experiment import ExperimentSpec
from oomlab.operator import memoryqos_view, resize_view, swapcost_view
from oomlab.operator.conditions import (
    CONDITION_DOCKER_OBSERVED,
    CONDITION_FINISHED,
    CONDITION_PARITY_KNOWN,
    CONDITION_POD_CREATED,
    CONDITION_VALID,
    condition_of,
    set_condition,
)
from oomlab.operator.config import OperatorConfig
from oomlab.operator.docker_view import (
    SOURCE_OBSERVED,
    BadObservation,
    DockerView,
    annotation_of,
    compact,
    docker_view,
    parse_observation,
)
from oomlab.operator.kubernetes_view import (
    Observation,
    kubernetes_allowance,
    kubernetes_prediction,
    predicted_swap_limit,
    progress_fields,
    resolve_cgroup_version,
    resolve_qos,
    resolve_swap_behavior,
    swap_limit_check,
)
from oomlab.operator.phases import advance_phase, phase_of, status_of
from oomlab.rules.classify import Phase
from oomlab.rules.kubelet_versions import cgroup_v1_note, fail_cgroup_v1
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.parity import Parity, ParityResult, compare
from oomlab.rules.results import Outcome
from oomlab.rules.semantics import Allowance


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


def docker_observed(
    body: Mapping[str, Any], spec: ExperimentSpec
) -> tuple[dict[str, Any] | None, tuple[bool, str, str] | None]:
    """status.docker.observed and the DockerObserved condition (status, reason, message).

    From the annotation when it is usable, else as recorded before; no condition without one.
    """
    recorded = (status_of(body).get("docker") or {}).get("observed")
    text = annotation_of(body)
    if text is None:
        return recorded, None
    try:
        observed = parse_observation(text, spec.docker)
    except BadObservation as exc:
        return recorded, (False, "BadObservation", str(exc))
    where = f" on {observed['host']}" if "host" in observed else ""
    sentence = (
        f"The Docker run observed{where} at {observed['recordedAt']} "
        f"({observed['outcome']}) is in status.docker."
    )
    return observed, (True, "Observed", sentence)


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
    runtime: tuple[str | None, str] | None = None,
) -> dict[str, Any]:
    """The desired status of a valid experiment, given one new observation.

    ``pod_created`` is (reason, message) for the PodCreated condition; ``runtime`` is
    (RuntimeClass name or None, its handler) once the operator resolved it. A Docker run is read
    from the experiment's annotation; an unusable one keeps what status.docker recorded before.
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
        config, progress.cgroup if progress else None, recorded_k8s.get("cgroupVersion"), node
    )
    swap_behavior = resolve_swap_behavior(
        config, recorded_k8s.get("swapBehavior"), node, spec.swap_behavior
    )
    qos = resolve_qos(obs.pod.qos_class or recorded_k8s.get("qosClass"), spec)
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
        **progress_fields(progress),
    }
    if runtime is not None:
        k8s.update(runtimeClassName=runtime[0], runtimeHandler=runtime[1])
    if node is not None:
        prediction = kubernetes_prediction(spec, allowance, node)
        k8s.update(
            predictedSwapBytes=predicted_swap_limit(allowance),
            predictedOutcome=prediction.outcome.value,
            explanation=prediction.explanation,
            transparentHugepages=node.thp,
            kubeletVersion=node.kubelet_version,
            failCgroupV1=fail_cgroup_v1(node, cgroup),
            kubeletNote=cgroup_v1_note(node, cgroup),
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
    merged_k8s = {**recorded_k8s, **compact(k8s)}
    agrees, disagreement = swap_limit_check(
        merged_k8s.get("predictedSwapBytes"), merged_k8s.get("swapLimitBytes")
    )
    if agrees is not None:
        merged_k8s["swapLimitAgrees"] = agrees
    if disagreement and node is not None:
        merged_k8s["explanation"] = f"{merged_k8s.get('explanation', '')} {disagreement}".strip()
    memory_qos = memoryqos_view.section(
        spec, node, qos=qos, cgroup=cgroup, progress=progress,
        recorded=recorded_k8s.get("memoryQoS"),
    )  # fmt: skip
    if memory_qos is not None:
        merged_k8s["memoryQoS"] = memory_qos
        if node is not None and memoryqos_view.acts(memory_qos):
            merged_k8s["explanation"] = (
                f"{merged_k8s.get('explanation', '')} {memory_qos['explanation']}".strip()
            )
    resize = resize_view.section(
        spec, recorded_k8s.get("resize"), obs.pod.resize or None, progress, node
    )
    if resize is not None:
        merged_k8s["resize"] = resize
        if node is not None:
            merged_k8s["explanation"] = (
                f"{merged_k8s.get('explanation', '')} {resize['explanation']}"
            )

    swap_cost = None
    if spec.measure_swap_cost:
        ended = phase.terminal
        swap_cost = swapcost_view.for_experiment(
            current.get("swapCost"),
            ended=ended,
            outcome=_outcome(merged_k8s.get("outcome")) if ended else None,
            reason=merged_k8s.get("reason"),
            progress=progress,
            swap_limit_bytes=merged_k8s.get("swapLimitBytes"),
        )

    observed, handed_over = docker_observed(body, spec)
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
    if handed_over is not None:
        conditions = set_condition(
            conditions,
            type_=CONDITION_DOCKER_OBSERVED,
            status=handed_over[0],
            reason=handed_over[1],
            message=handed_over[2],
            now=now,
            generation=generation,
        )
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
    if swap_cost is not None:
        desired["swapCost"] = swap_cost
    return compact(desired)


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
    if (desired.get("swapCost") or {}).get("state") == swapcost_view.STATE_WAITING:
        del desired["swapCost"]  # nothing ran: no cost will ever be measured
    if "parity" not in desired:
        desired["parity"] = {
            "result": Parity.UNKNOWN.value,
            "explanation": "The experiment did not run on Kubernetes.",
        }
    return compact(desired)


def invalid_spec_message(field_path: str, message: str) -> str:
    sentence = message.rstrip(".")
    return f"{field_path}: {sentence[:1].upper()}{sentence[1:]}."


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


def _outcome(value: Any) -> Outcome | None:
    try:
        return Outcome(value)
    except ValueError:
        return None
