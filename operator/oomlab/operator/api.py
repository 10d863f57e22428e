"""The operator's writes to the API: the experiment's status, the Events on it, pod removal.

The status has one writer, this operator, and is written read-modify-write: ``desired`` is asked
for the whole status of the experiment as last read, only what differs is sent, with the
resourceVersion as a precondition, and on a conflict the experiment is read again and
``desired`` asked again, so concurrent handlers never lose each other's fields. Reads and pod
creation are the generic calls in :mod:`oomlab.kube`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException

from oomlab import kube
from oomlab.operator.alarms import arm
from oomlab.operator.phases import phase_transition, status_of
from oomlab.operator.state import OperatorState
from oomlab.operator.status import status_patch
from oomlab.operator.swapcost_view import STATE_DONE, swap_cost_of
from oomlab.rules.classify import Phase

log = logging.getLogger("oomlab.operator.api")

CONFLICT_ATTEMPTS = 8
WARNING_PHASES = {Phase.OOM_KILLED, Phase.FAILED, Phase.TIMED_OUT, Phase.INVALID}


def patch_status(
    namespace: str, name: str, patch: Mapping[str, Any], *, resource_version: str | None = None
) -> dict[str, Any]:
    """A JSON merge patch on the status subresource; returns the whole object after it."""
    body: dict[str, Any] = {"status": dict(patch)}
    if resource_version is not None:
        body["metadata"] = {"resourceVersion": resource_version}
    return kube.patch_experiment_status(namespace, name, body)


@dataclass(frozen=True)
class StatusChange:
    before: dict[str, Any]
    after: dict[str, Any]
    body: dict[str, Any]
    """The experiment as the API server returned it after the patch."""


DesiredStatus = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]


def update_status(
    namespace: str,
    name: str,
    desired: DesiredStatus,
    *,
    current: Mapping[str, Any] | None = None,
    uid: str | None = None,
) -> StatusChange | None:
    """Set the experiment's status to ``desired(body)``, patching only what differs.

    ``desired`` gets the experiment as it is now and returns the whole desired status (None: leave
    it). Returns None when the experiment is gone (or is another incarnation than ``uid``) or
    nothing changed. On a conflict the experiment is read again and ``desired`` asked again.
    """
    body = dict(current) if current is not None else kube.find_experiment(namespace, name)
    for _ in range(CONFLICT_ATTEMPTS):
        if body is None or (uid is not None and body["metadata"].get("uid") != uid):
            return None
        before = status_of(body)
        wanted = desired(body)
        if wanted is None:
            return None
        patch = status_patch(before, wanted)
        if not patch:
            return None
        try:
            after_body = patch_status(
                namespace, name, patch, resource_version=body["metadata"].get("resourceVersion")
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status != 409:
                raise
            body = kube.find_experiment(namespace, name)
            continue
        return StatusChange(before=before, after=status_of(after_body), body=after_body)
    raise kube.StatusConflict(f"status of {namespace}/{name} kept changing; giving up for now")


async def write_status(
    state: OperatorState, current: Mapping[str, Any], desired: DesiredStatus
) -> StatusChange | None:
    """Patch what changed in the experiment ``current`` (as last read), announce a phase
    transition, and (re)arm the experiment's alarms."""
    namespace, name, uid = (current["metadata"][key] for key in ("namespace", "name", "uid"))
    change = await asyncio.to_thread(
        update_status, namespace, name, desired, current=current, uid=uid
    )
    if change is None:
        arm_alarms(state, current)  # after a restart nothing may change, but alarms must exist
        return None
    transition = phase_transition(change.before, change.after)
    if transition is not None:
        old, new = transition
        _announce(change.body, old, new, str(change.after.get("message", "")))
    _announce_swap_cost(change)
    timed_out_now = transition is not None and transition[1] == Phase.TIMED_OUT
    arm_alarms(state, change.body, timed_out_now=timed_out_now)
    return change


def arm_alarms(
    state: OperatorState, body: Mapping[str, Any], *, timed_out_now: bool = False
) -> None:
    """The experiment's alarms as the deadline policy says for ``body``."""
    on_deadline = state.on_deadline
    if on_deadline is None:
        raise kopf.PermanentError("the operator's startup handler has not configured its alarms")
    arm(
        state.alarms,
        body,
        lambda deadline, experiment: on_deadline(state, deadline, experiment),
        timed_out_now=timed_out_now,
    )


def as_body(document: Mapping[str, Any]) -> kopf.Body:
    """A kopf Body view of a plain dict (an object as the API server returned it)."""
    return kopf.Body(cast(kopf.RawBody, dict(document)))


def _announce(body: Mapping[str, Any], old: Phase | None, new: Phase, message: str) -> None:
    """A Kubernetes Event on the experiment for one phase transition."""
    text = f"{old.value if old else 'New'} -> {new.value}: {message}"
    if new in WARNING_PHASES:
        kopf.warn(as_body(body), reason=new.value, message=text)
    else:
        kopf.info(as_body(body), reason=new.value, message=text)


def _announce_swap_cost(change: StatusChange) -> None:
    """An Event when status.swapCost is decided (measured, or nothing to measure)."""
    before, after = swap_cost_of(change.before), swap_cost_of(change.after)
    if after.get("state") == STATE_DONE and before.get("state") != STATE_DONE:
        reason = f"SwapCost{after.get('verdict', '')}"
        kopf.info(as_body(change.body), reason=reason, message=str(after.get("message", "")))


async def delete_pod(namespace: str, name: str) -> None:
    if await asyncio.to_thread(kube.delete_pod, namespace, name):
        log.info("deleted pod %s/%s", namespace, name)
