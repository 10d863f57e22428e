"""The experiment's status conditions: their types and how one is set without losing history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from oomlab.rules.timestamps import rfc3339

CONDITION_VALID = "Valid"
CONDITION_POD_CREATED = "PodCreated"
CONDITION_FINISHED = "Finished"
CONDITION_PARITY_KNOWN = "ParityKnown"
CONDITION_DOCKER_OBSERVED = "DockerObserved"
"""Set once ``oomlab parity NAME`` handed over a Docker run: True when it was folded into
status.docker, False (with the reason in a sentence) when the operator could not use it."""


def set_condition(
    conditions: list[dict[str, Any]] | None,
    *,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """A new list with ``type_`` set; ``lastTransitionTime`` is kept when the status is the same."""
    value = "True" if status else "False"
    result = [dict(c) for c in conditions or []]
    existing = next((c for c in result if c.get("type") == type_), None)
    condition: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": rfc3339(now),
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    if existing is None:
        result.append(condition)
        return result
    if existing.get("status") == value and existing.get("lastTransitionTime"):
        condition["lastTransitionTime"] = existing["lastTransitionTime"]
    existing.clear()
    existing.update(condition)
    return result


def condition_of(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)
