"""The deadline policy: from an experiment's status and the time now, which alarms to set, when,
and which to drop. Pure, so it is table-tested without an event loop.

Every deadline is measured from a timestamp the status records, so the plan can be recomputed
after any restart. Those timestamps come from the kubelet's or the API server's clock, so no
alarm is ever set further away than its own length from now.

* running: the experiment times out ``timeoutSeconds`` after its container started (after its
  creation if it never started);
* finished: its pod is removed ``ttlSecondsAfterFinished`` after it finished, or at once when it
  just timed out; the timeout is dropped;
* the swap-cost twin: it is given ``timeoutSeconds`` from its creation while it is measured, and
  removed ``ttlSecondsAfterFinished`` after the swap cost is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from oomlab.experiment import ExperimentSpec
from oomlab.operator.conditions import CONDITION_FINISHED, condition_of
from oomlab.operator.phases import is_terminal, status_of
from oomlab.operator.swapcost_view import STATE_MEASURING, swap_cost_of
from oomlab.rules.timestamps import parse_time


class Deadline(StrEnum):
    """What happens when an alarm goes off; the value is its key's prefix."""

    TIMEOUT = "timeout"
    """The experiment ran out of timeoutSeconds: TimedOut."""
    CLEANUP = "cleanup"
    """Remove the experiment's pod."""
    TWIN_TIMEOUT = "twin"
    """The twin ran out of timeoutSeconds: fold it in if it ended, else no baseline."""
    TWIN_CLEANUP = "twin-cleanup"
    """Remove the twin's pod."""


@dataclass(frozen=True)
class DeadlinePlan:
    """Alarms to set (at these times) and to drop; any other alarm is left as it is."""

    due: Mapping[Deadline, datetime] = field(default_factory=dict)
    dropped: frozenset[Deadline] = frozenset()


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


def plan_deadlines(
    body: Mapping[str, Any],
    spec: ExperimentSpec,
    now: datetime,
    *,
    timed_out_now: bool = False,
) -> DeadlinePlan:
    """The experiment's alarms as its status ``body`` stands at ``now``. ``timed_out_now``: this
    very status write made it TimedOut, so its pod goes at once."""
    if not is_terminal(body):
        deadline = timeout_deadline(body, spec)
        if deadline is None:
            return DeadlinePlan()
        latest = now + timedelta(seconds=spec.timeout_s)
        return DeadlinePlan(due={Deadline.TIMEOUT: min(deadline, latest)})
    due, dropped = _twin_deadlines(body, spec, now)
    dropped.add(Deadline.TIMEOUT)
    if timed_out_now:
        due[Deadline.CLEANUP] = now
    elif (deadline := cleanup_deadline(body, spec)) is not None:
        latest = now + timedelta(seconds=spec.ttl_after_finished_s or 0)
        due[Deadline.CLEANUP] = min(deadline, latest)
    return DeadlinePlan(due=due, dropped=frozenset(dropped))


def _twin_deadlines(
    body: Mapping[str, Any], spec: ExperimentSpec, now: datetime
) -> tuple[dict[Deadline, datetime], set[Deadline]]:
    """The twin's deadline while it is measured (also when it never gets a node), else its
    removal once the swap cost is known."""
    section = swap_cost_of(status_of(body))
    created = parse_time(section.get("twinCreatedAt"))
    if section.get("state") == STATE_MEASURING and created is not None:
        latest = now + timedelta(seconds=spec.timeout_s)
        return {
            Deadline.TWIN_TIMEOUT: min(created + timedelta(seconds=spec.timeout_s), latest)
        }, set()
    finished = parse_time(section.get("finishedAt"))
    if (
        section.get("twinPodName")
        and finished is not None
        and spec.ttl_after_finished_s is not None
    ):
        latest = now + timedelta(seconds=spec.ttl_after_finished_s)
        at = min(finished + timedelta(seconds=spec.ttl_after_finished_s), latest)
        return {Deadline.TWIN_CLEANUP: at}, {Deadline.TWIN_TIMEOUT}
    return {}, {Deadline.TWIN_TIMEOUT}
