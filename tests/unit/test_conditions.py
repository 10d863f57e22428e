"""Conditions keep their history: lastTransitionTime moves only when the status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from oomlab.operator.conditions import set_condition

NOW = datetime(2026, 11, 25, 20, 40, 5, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)


def setting(
    conditions: list[dict[str, Any]] | None, type_: str, status: bool, reason: str, now: datetime
) -> list[dict[str, Any]]:
    return set_condition(
        conditions, type_=type_, status=status, reason=reason, message=reason, now=now,
        generation=1,
    )  # fmt: skip


def test_set_condition_keeps_transition_time_when_status_is_unchanged() -> None:
    first = setting(None, "Finished", False, "Pending", NOW)
    same = setting(first, "Finished", False, "Running", LATER)
    assert same[0]["lastTransitionTime"] == "2026-11-25T20:40:05Z"
    assert same[0]["reason"] == "Running"
    flipped = setting(same, "Finished", True, "Completed", LATER)
    assert flipped[0]["lastTransitionTime"] == "2026-11-25T20:40:35Z"
    assert flipped[0]["status"] == "True"
    assert first[0]["reason"] == "Pending"  # inputs are not mutated
    other = setting(flipped, "Valid", True, "SpecValid", LATER)
    assert [c["type"] for c in other] == ["Finished", "Valid"]
    assert other[1]["observedGeneration"] == 1
