"""Phases only move forward, and a change of phase is seen as one transition."""

from __future__ import annotations

import pytest

from oomlab.operator.phases import advance_phase, phase_transition
from oomlab.rules.classify import Phase


@pytest.mark.parametrize(
    ("current", "proposed", "result"),
    [
        (None, Phase.PENDING, Phase.PENDING),
        (Phase.PENDING, Phase.RUNNING, Phase.RUNNING),
        (Phase.RUNNING, Phase.PENDING, Phase.RUNNING),
        (Phase.RUNNING, Phase.OOM_KILLED, Phase.OOM_KILLED),
        (Phase.PENDING, Phase.FAILED, Phase.FAILED),
        (Phase.OOM_KILLED, Phase.TIMED_OUT, Phase.OOM_KILLED),
        (Phase.INVALID, Phase.RUNNING, Phase.INVALID),
    ],
)
def test_phases_only_move_forward(current: Phase | None, proposed: Phase, result: Phase) -> None:
    assert advance_phase(current, proposed) == result


def test_phase_transition() -> None:
    assert phase_transition({}, {"phase": "Pending"}) == (None, Phase.PENDING)
    assert phase_transition({"phase": "Running"}, {"phase": "OOMKilled"}) == (
        Phase.RUNNING,
        Phase.OOM_KILLED,
    )
    assert phase_transition({"phase": "Running"}, {"phase": "Running"}) is None
