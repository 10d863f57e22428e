"""The swap-cost twin's life: made after the experiment's own pod completed using swap, folded in
when it ends, given up on when it outlives timeoutSeconds.

The twin is the same workload in a Guaranteed pod with a large memory limit and no swap, on the
same node, run after the experiment's pod, never beside it: side by side they would compete for
the very memory and CPU being measured. What it looks like is :mod:`.twin`; what
status.swapCost says is :mod:`.swapcost_view`. Its alarms are in the deadline policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from oomlab import kube
from oomlab.experiment import ExperimentSpec, InvalidSpec
from oomlab.operator.alarms import ExperimentRef
from oomlab.operator.api import StatusChange, as_body, delete_pod, write_status
from oomlab.operator.kubernetes_view import owner_experiment
from oomlab.operator.logs import workload_progress
from oomlab.operator.phases import status_of
from oomlab.operator.state import OperatorState
from oomlab.operator.swapcost_view import (
    STATE_MEASURING,
    after_twin,
    swap_cost_of,
    twin_lost,
    twin_started,
)
from oomlab.operator.twin import build_twin_pod, twin_memory_limit, twin_pod_name
from oomlab.rules.classify import classify_pod
from oomlab.rules.timestamps import rfc3339


def _now() -> datetime:
    return datetime.now(UTC)


async def ensure_twin(
    state: OperatorState, body: Mapping[str, Any], *, after_restart: bool = False
) -> None:
    """Create the twin when status.swapCost is Measuring and none was made yet (after a restart:
    create or adopt it; the twin's own pod events then fold its result in)."""
    section = swap_cost_of(status_of(body))
    if section.get("state") != STATE_MEASURING:
        return
    if section.get("twinPodName") and not after_restart:
        return
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return
    node = (status_of(body).get("kubernetes") or {}).get("nodeName")
    pod = build_twin_pod(name, namespace, uid, spec, node)
    kopf.adopt(pod, owner=as_body(body))
    twin = pod["metadata"]["name"]
    created: dict[str, Any] | None
    recorded_at: str | None = None
    try:
        created = await asyncio.to_thread(kube.create_pod, pod)
    except ApiException as exc:
        if exc.status != 409:
            why = f"the twin pod {twin} was refused ({kube.error_message(exc)})"
            await _write_swap_cost(state, body, lambda sec: twin_lost(sec, why, rfc3339(_now())))
            return
        created = await asyncio.to_thread(kube.read_pod, namespace, twin)
        owner = owner_experiment(created or {})
        if owner is None or owner.uid != uid:
            raise kopf.PermanentError(f"pod {twin} exists and belongs to something else") from None
        # Adopted after a restart: the time recorded when it was made stays, so nothing changes.
        recorded_at = section.get("twinCreatedAt")
    memory = twin_memory_limit(spec)
    created_at = (
        recorded_at
        or ((created or {}).get("metadata") or {}).get("creationTimestamp")
        or rfc3339(_now())
    )
    change = await _write_swap_cost(
        state,
        body,
        lambda sec: twin_started(
            sec, pod_name=twin, node_name=node, memory_bytes=memory, created_at=created_at
        ),
    )
    if change is not None and not section.get("twinPodName"):
        where = f" on {node}" if node else ""
        kopf.info(
            as_body(change.body),
            reason="SwapCostTwinStarted",
            message=f"Started the unconstrained twin {twin}{where}: the same workload with a "
            f"{memory // 2**20} MiB memory limit and no swap, as the baseline of status.swapCost.",
        )


async def _write_swap_cost(
    state: OperatorState,
    body: Mapping[str, Any],
    update: Callable[[dict[str, Any]], dict[str, Any]],
) -> StatusChange | None:
    """``update`` applied to status.swapCost while it is Measuring (a no-op once Done)."""

    def desired(current: Mapping[str, Any]) -> dict[str, Any] | None:
        status = status_of(current)
        section = swap_cost_of(status)
        if section.get("state") != STATE_MEASURING:
            return None
        return {**status, "swapCost": update(section)}

    return await write_status(state, body, desired)


async def twin_event(
    state: OperatorState, parent: Mapping[str, Any], pod: Mapping[str, Any], *, deleted: bool
) -> None:
    """The twin ended (or vanished): its working time against the experiment's, in the status."""
    if swap_cost_of(status_of(parent)).get("state") != STATE_MEASURING:
        return
    try:
        spec = ExperimentSpec.from_spec(parent.get("spec") or {})
    except InvalidSpec:
        return
    namespace = parent["metadata"]["namespace"]
    progress = await workload_progress(namespace, pod)
    verdict = classify_pod(
        pod,
        limit_bytes=twin_memory_limit(spec),
        allocated_bytes=progress.allocated_bytes if progress else None,
    )
    if verdict.phase.terminal:
        await _write_swap_cost(
            state,
            parent,
            lambda sec: after_twin(
                sec, verdict.outcome, verdict.reason, progress, verdict.finished_at
            ),
        )
    elif deleted:
        why = "the twin pod was deleted before it finished"
        await _write_swap_cost(state, parent, lambda sec: twin_lost(sec, why, rfc3339(_now())))


async def twin_deadline(state: OperatorState, experiment: ExperimentRef) -> None:
    """timeoutSeconds passed since the twin was created: fold it if it ended meanwhile, else
    remove it and say there is no baseline."""
    namespace, name, uid = experiment.namespace, experiment.name, experiment.uid
    body = await asyncio.to_thread(kube.find_experiment, namespace, name)
    if body is None or body["metadata"].get("uid") != uid:
        return
    twin = twin_pod_name(name, uid)
    pod = await asyncio.to_thread(kube.read_pod, namespace, twin)
    if pod is not None:
        await twin_event(state, body, pod, deleted=False)
        body = await asyncio.to_thread(kube.find_experiment, namespace, name)
    if body is None or swap_cost_of(status_of(body)).get("state") != STATE_MEASURING:
        return
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return
    await delete_pod(namespace, twin)
    why = f"the unconstrained twin did not finish within timeoutSeconds ({spec.timeout_s} s)"
    await _write_swap_cost(state, body, lambda sec: twin_lost(sec, why, rfc3339(_now())))
