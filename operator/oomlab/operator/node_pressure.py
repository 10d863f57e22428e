"""Node-scale experiments (spec.nodePressure): admission to a node labelled to allow them, the
bystander pods, and the node-level observations in status.nodePressure.

* :func:`admit` (called by the create handler before the pod exists): Invalid with a sentence
  unless a node the experiment could land on carries ``oomlab.dev/node-pressure=allowed``; else
  the spec pinned to that node with its workload sized to the fill.
* create/resume: the bystanders (owned by the experiment, so deleting it deletes them) and the
  prediction with the node's thresholds and baseline.
* pod events: a bystander's end; the workload's start begins sampling the node (the kubelet's
  /stats/summary and MemoryPressure condition, every few seconds); its end waits for the node
  to be Ready without MemoryPressure again, writes what was observed and removes the bystanders.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from oomlab import experiment, kube
from oomlab.experiment import ExperimentSpec, InvalidSpec, pod_name
from oomlab.operator.api import as_body, delete_pod, write_status
from oomlab.operator.kubernetes_view import owner_experiment
from oomlab.operator.logs import workload_progress
from oomlab.operator.node_pressure_io import configz, read_summary, system_oom_since
from oomlab.operator.phases import status_of
from oomlab.operator.pressure_view import (
    HOSTNAME_LABEL,
    Sample,
    bystander_pod_name,
    bystander_pods,
    bystander_record,
    condition,
    docker_for,
    fill_workload,
    is_bystander,
    node_ready,
    observed_order,
    predict_for,
    pressure_times,
    sample_before,
    sample_from_summary,
    thresholds_from,
    workload_swap_bytes,
    workload_swap_view,
)
from oomlab.operator.state import OperatorState, node_facts, state_of
from oomlab.rules.classify import classify_node_outcome, classify_pod, parse_eviction_message
from oomlab.rules.nodes import SWAP_BEHAVIOR_LABEL
from oomlab.rules.pressure import WORKLOAD
from oomlab.rules.pressure_spec import allows_node_pressure, refusal_without_allowed_node
from oomlab.rules.semantics import SwapBehavior

log = logging.getLogger("oomlab.operator.node_pressure")

_EXPERIMENTS = (experiment.GROUP, experiment.VERSION, experiment.PLURAL)
SAMPLE_EVERY_S = 3.0
RECOVERY_TIMEOUT_S = 420.0
"""How long the operator waits for the node to be Ready without MemoryPressure after the run:
the kubelet keeps MemoryPressure for evictionPressureTransitionPeriod (5 min by default) after
the signal clears."""
MAX_SAMPLES = 400

_samplers: dict[str, asyncio.Task[None]] = {}
_samples: dict[str, list[Sample]] = {}
_conditions: dict[str, list[tuple[str, Mapping[str, Any] | None]]] = {}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_node_pressure(spec: Mapping[str, Any], **_: Any) -> bool:
    return bool((spec or {}).get("nodePressure"))


async def admit(state: OperatorState, spec: ExperimentSpec) -> ExperimentSpec | str:
    """The spec pinned to a node that allows node-scale experiments and sized to its fill, or
    the sentence that makes the experiment Invalid. Specs without nodePressure pass unchanged."""
    if spec.node_pressure is None:
        return spec
    candidates = []
    for records in state.nodes.values():
        for record in records:
            labels = record.view.labels
            if (
                spec.swap_behavior == SwapBehavior.LIMITED_SWAP
                and labels.get(SWAP_BEHAVIOR_LABEL) != SwapBehavior.LIMITED_SWAP.value
            ):
                continue
            if (
                spec.swap_behavior == SwapBehavior.NO_SWAP
                and labels.get(SWAP_BEHAVIOR_LABEL) == SwapBehavior.LIMITED_SWAP.value
            ):
                continue
            if any(labels.get(k) != v for k, v in spec.node_selector.items()):
                continue
            candidates.append(record)
    allowed = sorted(
        (r for r in candidates if allows_node_pressure(r.view.labels)), key=lambda r: r.view.name
    )
    if not allowed:
        names = sorted(r.view.name for r in candidates)
        swap = None if spec.swap_behavior is None else spec.swap_behavior.value
        return refusal_without_allowed_node(names, swap)
    node = allowed[0]
    capacity = node.facts.memory_capacity_bytes
    if not capacity:
        return f"spec.nodePressure: node {node.view.name} does not report its memory capacity"
    return dataclasses.replace(
        spec,
        workload=fill_workload(spec, capacity),
        node_selector={**spec.node_selector, HOSTNAME_LABEL: node.view.name},
    )


async def _write(state: OperatorState, body: Mapping[str, Any], part: Mapping[str, Any]) -> None:
    """Merge ``part`` into status.nodePressure (read-modify-write, like every status write)."""

    def desired(current: Mapping[str, Any]) -> dict[str, Any]:
        status = dict(status_of(current))
        status["nodePressure"] = {**(status.get("nodePressure") or {}), **part}
        return status

    await write_status(state, body, desired)


async def _admitted(state: OperatorState, body: Mapping[str, Any]) -> ExperimentSpec | None:
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return None
    admitted = await admit(state, spec)
    return admitted if isinstance(admitted, ExperimentSpec) else None


@kopf.on.resume(*_EXPERIMENTS, when=_has_node_pressure, id="node-pressure-start")
@kopf.on.create(*_EXPERIMENTS, when=_has_node_pressure, id="node-pressure-start")
async def start_node_pressure(
    *, body: kopf.Body, namespace: str | None, name: str, uid: str, memo: kopf.Memo, **_: Any
) -> None:
    """The bystanders and the prediction, once; an Invalid experiment gets neither."""
    assert namespace is not None
    state = state_of(memo)
    current = dict(body)
    spec = await _admitted(state, current)
    if spec is None or (status_of(current).get("nodePressure") or {}).get("predicted"):
        return
    assert spec.node_pressure is not None
    node_name = spec.node_selector[HOSTNAME_LABEL]
    facts = await node_facts(state, node_name)
    node = await asyncio.to_thread(kube.read_node, node_name)
    labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    thresholds = thresholds_from(await asyncio.to_thread(configz, node_name), labels)
    summary = await asyncio.to_thread(read_summary, node_name)
    baseline = sample_from_summary(summary or {}).working_set_bytes or 0
    names = [bystander_pod_name(name, uid, i) for i in range(len(spec.node_pressure.bystanders))]
    if facts is None:
        raise kopf.TemporaryError(f"node {node_name} is not known yet", delay=5)
    for pod in bystander_pods(name, namespace, uid, spec, node_name):
        kopf.adopt(pod, owner=as_body(current))
        try:
            await asyncio.to_thread(kube.create_pod, pod)
        except ApiException as exc:
            if exc.status != 409:
                raise
    run = predict_for(spec, facts, thresholds, baseline, names)
    prediction = run.prediction
    workload_pod = pod_name(name, uid)
    await _write(
        state,
        current,
        {
            "nodeName": node_name,
            "fillBytes": spec.workload.size_bytes,
            "baselineBytes": baseline,
            "thresholds": thresholds.to_status(),
            "predicted": {
                "outcome": prediction.outcome.value,
                "explanation": prediction.explanation,
                "pressureAtBytes": prediction.pressure_at_bytes,
                "kernelWallBytes": prediction.kernel_wall_bytes,
                "evictedFirst": list(run.evicted_first),
                "evictionOrder": [workload_pod if n == WORKLOAD else n for n in run.order],
            },
            "docker": docker_for(spec, facts, thresholds, baseline),
        },
    )


@kopf.on.event(
    "",
    "v1",
    "pods",
    labels={experiment.LABEL_NAME: experiment.POD_APP},
    id="node-pressure-pods",
)
async def node_pressure_pod(
    *, type: str, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    pod = dict(body)
    owner = owner_experiment(pod)
    if owner is None or namespace is None:
        return
    parent = await asyncio.to_thread(kube.find_experiment, namespace, owner.name)
    if parent is None or parent["metadata"].get("uid") != owner.uid:
        return
    if not (parent.get("spec") or {}).get("nodePressure"):
        return
    state = state_of(memo)
    if is_bystander(pod):
        record = bystander_record(pod)
        seen = [
            r
            for r in (status_of(parent).get("nodePressure") or {}).get("bystanders") or []
            if r.get("pod") != record["pod"]
        ]
        records = sorted([*seen, record], key=lambda r: str(r.get("pod")))
        await _write(
            state, parent, {"bystanders": records, "evictionOrder": observed_order(records)}
        )
        return
    if (pod.get("metadata") or {}).get("name") != pod_name(owner.name, owner.uid):
        return  # another role (a twin): not ours
    verdict = classify_pod(pod)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name and owner.uid not in _samplers:
        _samplers[owner.uid] = asyncio.create_task(_sample(owner.uid, node_name))
    observed = (status_of(parent).get("nodePressure") or {}).get("observed")
    if verdict.phase.terminal and not observed and owner.uid not in _finishing:
        _finishing.add(owner.uid)
        finish = _finish_once(state, namespace, owner.name, owner.uid, pod, node_name)
        task = asyncio.create_task(_finish(f"{namespace}/{owner.name}", owner.uid, finish))
        _finishers.add(task)
        task.add_done_callback(_finishers.discard)


_finishing: set[str] = set()
_finishers: set[asyncio.Task[None]] = set()


async def _sample(uid: str, node_name: str) -> None:
    samples = _samples.setdefault(uid, [])
    conditions = _conditions.setdefault(uid, [])
    while True:
        summary = await asyncio.to_thread(read_summary, node_name)
        node = await asyncio.to_thread(kube.read_node, node_name)
        if summary:
            samples.append(sample_from_summary(summary))
        conditions.append((_now(), condition(node or {}, "MemoryPressure")))
        del samples[:-MAX_SAMPLES], conditions[:-MAX_SAMPLES]
        await asyncio.sleep(SAMPLE_EVERY_S)


async def _finish(where: str, uid: str, finish: Coroutine[Any, Any, None]) -> None:
    """Run ``finish`` (:func:`_finish_once`), then forget the experiment's samples whatever
    happened."""
    try:
        await finish
    except Exception:
        log.exception("node pressure: finishing %s failed", where)
    finally:
        task = _samplers.pop(uid, None)
        if task is not None:
            task.cancel()
        _samples.pop(uid, None)
        _conditions.pop(uid, None)
        _finishing.discard(uid)


async def _finish_once(
    state: OperatorState,
    namespace: str,
    name: str,
    uid: str,
    pod: Mapping[str, Any],
    node_name: str | None,
) -> None:
    """After the workload ended: remove the bystanders, wait for the node to recover, write."""
    parent = await asyncio.to_thread(kube.find_experiment, namespace, name)
    if parent is None:
        return
    spec = ExperimentSpec.from_spec(parent.get("spec") or {})
    assert spec.node_pressure is not None
    for index in range(len(spec.node_pressure.bystanders)):
        await delete_pod(namespace, bystander_pod_name(name, uid, index))
    verdict = classify_pod(pod)
    progress = await workload_progress(namespace, pod)
    started = verdict.started_at or (pod.get("status") or {}).get("startTime")
    system_oom = bool(node_name) and await asyncio.to_thread(
        system_oom_since, str(node_name), started
    )
    ready = False
    waited = 0.0
    node: Mapping[str, Any] | None = None
    while waited < RECOVERY_TIMEOUT_S and node_name:
        node = await asyncio.to_thread(kube.read_node, node_name)
        pressure = condition(node or {}, "MemoryPressure")
        ready = node_ready(node or {})
        if ready and (pressure is None or pressure.get("status") == "False"):
            break
        await asyncio.sleep(SAMPLE_EVERY_S)
        waited += SAMPLE_EVERY_S
    samples = list(_samples.get(uid, []))
    conditions = [*_conditions.get(uid, []), (_now(), condition(node or {}, "MemoryPressure"))]
    ended = verdict.finished_at or next(
        (
            c.get("lastTransitionTime")
            for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") == "DisruptionTarget"
        ),
        None,
    )
    at_end = sample_before(samples, ended)
    swap_base = samples[0].swap_used_bytes if samples else None
    swap_peak = max((s.swap_used_bytes or 0 for s in samples), default=None)
    swap_used = None if swap_base is None or swap_peak is None else swap_peak - swap_base
    if swap_used is None:  # no kubelet summary: the workload's own cgroup says
        swap_used = workload_swap_bytes(progress)
    told = classify_node_outcome(
        verdict,
        limit_bytes=spec.limit_bytes,
        allocated_bytes=progress.allocated_bytes if progress else None,
        swap_used_bytes=swap_used,
        system_oom=system_oom,
    )
    eviction = parse_eviction_message(verdict.message) if verdict.reason == "Evicted" else None
    predicted = ((status_of(parent).get("nodePressure") or {}).get("predicted") or {}).get(
        "outcome"
    )
    observed: dict[str, Any] = {
        "outcome": told[0].value if told else verdict.reason,
        "why": told[1] if told else verdict.message,
        "endedAt": ended,
        "systemOOMEvent": system_oom,
        "workloadSwapPeakBytes": swap_used,
        "allocatedBytes": progress.allocated_bytes if progress else None,
    }
    if eviction is not None:
        observed.update(
            signal=eviction.signal,
            thresholdBytes=eviction.threshold_bytes,
            memoryAvailableBytes=eviction.available_bytes,
            workingSetBytes=eviction.usage_bytes,
        )
    if at_end is not None:
        observed["nodeAtEnd"] = at_end.to_status()
    else:
        facts = await node_facts(state, node_name)
        observed["nodeAtEnd"] = workload_swap_view(progress, facts)
    await _write(
        state,
        parent,
        {
            "observed": {k: v for k, v in observed.items() if v is not None},
            "result": "Match" if told and predicted == told[0].value else "Mismatch",
            "memoryPressure": pressure_times(conditions),
            "nodeReadyAfter": ready,
            "samples": len(samples),
        },
    )
    if not ready:
        kopf.warn(
            as_body(parent),
            reason="NodeNotReady",
            message=f"node {node_name} was not Ready "
            f"{RECOVERY_TIMEOUT_S:.0f} s after the experiment",
        )


@kopf.on.event(*_EXPERIMENTS, when=_has_node_pressure, id="node-pressure-deleted")
async def node_pressure_deleted(
    *, type: str, body: kopf.Body, namespace: str | None, name: str, uid: str, **_: Any
) -> None:
    """Deleting the experiment removes its bystanders at once (garbage collection would too)."""
    if type != "DELETED" or namespace is None:
        return
    task = _samplers.pop(uid, None)
    if task is not None:
        task.cancel()
    count = len(((body.get("spec") or {}).get("nodePressure") or {}).get("bystanders") or [])
    for index in range(count):
        await delete_pod(namespace, bystander_pod_name(name, uid, index))
