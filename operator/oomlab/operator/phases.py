"""An experiment's phase over time: reading it and its forward-only order.

Phases only move forward (Pending -> Running -> a terminal phase) and the first terminal phase
sticks: a late pod event (the pod deleted after a timeout, say) cannot rewrite a result. The
deadlines measured from its timestamps are in :mod:`oomlab.operator.deadline`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oomlab.rules.classify import Phase

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
