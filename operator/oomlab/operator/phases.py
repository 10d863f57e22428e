"""An experiment's phase over time: reading it, its forward-only order, and its deadlines.

Phases only move forward (Pending -> Running -> a terminal phase) and the first terminal phase
sticks: a late pod event (the pod deleted after a timeout, say) cannot rewrite a result. The
deadlines (timeoutSeconds, ttlSecondsAfterFinished) are measured from the timestamps the status
records, so they can be recomputed after any restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from oomlab.experiment import ExperimentSpec
from oomlab.operator.conditions import CONDITION_FINISHED, condition_of
from oomlab.rules.classify import Phase
from oomlab.rules.timestamps import parse_time

_PHASE_RANK = {Phase.PENDING: 1, Phase.RUNNING: 2}
_TERMINAL_RANK = 3


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


def advance_phase(current: Phase | None, proposed: Phase) -> Phase:
    """Phases move forward only; the first terminal phase is final."""
    if current is None:
        return proposed
    rank_now = _TERMINAL_RANK if current.terminal else _PHASE_RANK[current]
    if rank_now == _TERMINAL_RANK:
        return current
    rank_new = _TERMINAL_RANK if proposed.terminal else _PHASE_RANK[proposed]
    return proposed if rank_new > rank_now else current


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
