"""spec.resize's one action: once the workload has run ``afterSeconds``, change its pod's memory
request through the ``resize`` subresource and record what the API server said in
status.kubernetes.resize (the kubelet's answer arrives with the pod's next events, see
:mod:`oomlab.operator.resize_view`). Armed from every pod event until it has run."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from oomlab import kube
from oomlab.experiment import CONTAINER, ExperimentSpec
from oomlab.operator.api import write_status
from oomlab.operator.phases import is_terminal, status_of
from oomlab.operator.resize_view import due_at, explain, requested
from oomlab.operator.state import OperatorState
from oomlab.rules.timestamps import rfc3339

log = logging.getLogger("oomlab.operator.resize")

_ASKED: set[str] = set()
"""Experiments (uids) this operator process has resized: a pod event can re-arm the alarm (due
already, so at once) while the first call's status write is still on its way."""


def alarm_key(uid: str) -> str:
    return f"{uid}/resize"


def already_asked(body: Mapping[str, Any]) -> bool:
    return "requestedAt" in ((status_of(body).get("kubernetes") or {}).get("resize") or {})


def arm_resize(
    state: OperatorState, parent: Mapping[str, Any], spec: ExperimentSpec, pod: Mapping[str, Any]
) -> None:
    """Set (or move) the resize alarm of this experiment while its resize is still to do."""
    due = due_at(spec, pod)
    if due is None or already_asked(parent) or is_terminal(parent):
        return
    meta = parent["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    pod_name = str((pod.get("metadata") or {}).get("name", ""))

    async def resize_now() -> None:
        await resize(state, namespace, name, uid, pod_name, spec)

    state.alarms.set(alarm_key(uid), due, resize_now)


async def resize(
    state: OperatorState, namespace: str, name: str, uid: str, pod: str, spec: ExperimentSpec
) -> None:
    assert spec.resize is not None
    parent = await asyncio.to_thread(kube.find_experiment, namespace, name)
    if parent is None or parent["metadata"].get("uid") != uid:
        return
    if uid in _ASKED or already_asked(parent) or is_terminal(parent):
        return
    _ASKED.add(uid)
    refused: str | None = None
    try:
        await asyncio.to_thread(
            kube.resize_memory_request, namespace, pod, CONTAINER, spec.resize.memory_request_text
        )
        log.info(
            "resized %s/%s: memory request %s", namespace, pod, spec.resize.memory_request_text
        )
    except ApiException as exc:
        refused = kube.error_message(exc)
        log.info("resize of %s/%s refused: %s", namespace, pod, refused)
    record = requested(spec, rfc3339(datetime.now(UTC)), refused)

    def with_resize(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if already_asked(body):
            return None
        status = copy.deepcopy(dict(status_of(body)))
        k8s = status.setdefault("kubernetes", {})
        k8s["resize"] = {**record, "explanation": explain(record)}
        return status

    await write_status(state, parent, with_resize)
