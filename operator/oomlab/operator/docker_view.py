"""spec.docker seen through Docker's rules: predicted by the operator, observed by a real run.

A Docker run reaches the experiment as an annotation (:data:`OBSERVATION_ANNOTATION`, a small JSON
document written by ``oomlab parity NAME``); only the operator reads it and folds it into
status.docker under its own configuration, so the status has one writer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oomlab.experiment import DockerFlags, ExperimentSpec
from oomlab.operator.config import OperatorConfig
from oomlab.operator.timestamps import parse_time, rfc3339
from oomlab.rules.docker import docker_prediction
from oomlab.rules.results import Outcome, Predicted, RunResult
from oomlab.rules.semantics import Allowance, FlagError
from oomlab.rules.units import UNLIMITED

OBSERVATION_ANNOTATION = "docker.oomlab.dev/observation"
"""Not under ``oomlab.dev/``: kopf's progress and diff-base storages own that prefix and leave its
annotations out of the state they compare, so kopf would never see this one change."""

SOURCE_PREDICTED = "Predicted"
SOURCE_OBSERVED = "Observed"

_PREDICTED_OUTCOME = {
    Predicted.COMPLETED: Outcome.COMPLETED,
    Predicted.OOM_KILLED: Outcome.OOM_KILLED,
}

# The annotation's fields that status.docker.observed keeps (the CRD's schema), by type.
_OBSERVED_INTS = ("exitCode", "allocatedBytes", "peakBytes", "hostSwapBytes")
_OBSERVED_STRINGS = ("runtime", "engine", "engineVersion", "cgroupVersion", "host", "reason")


def compact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop None values (one level): the CRD's integers and strings are not nullable."""
    return {k: v for k, v in data.items() if v is not None}


# --------------------------------------------------------------------------------------------
# the view


@dataclass(frozen=True)
class DockerView:
    """status.docker and what parity needs from it."""

    section: dict[str, Any] | None
    outcome: Outcome | None
    allowance: Allowance | None
    source: str = SOURCE_PREDICTED
    refused: str | None = None


def docker_view(
    spec: ExperimentSpec, config: OperatorConfig, observed: Mapping[str, Any] | None
) -> DockerView:
    """Docker's predicted outcome for spec.docker, or the observed one once a run is recorded.

    The prediction and its explanation always follow ``config`` (the operator's), also next to
    an observed run.
    """
    flags = spec.docker
    if flags is None:
        return DockerView(None, None, None)
    try:
        allowance, prediction = docker_prediction(
            flags,
            spec.workload.demand_bytes(),
            host_swap_bytes=config.docker_host_swap_bytes,
        )
    except FlagError as exc:
        sentence = f"Docker refuses {flags.cli()}: {exc}."
        refused = {
            "outcome": Outcome.REFUSED.value,
            "source": SOURCE_PREDICTED,
            "predictedOutcome": Outcome.REFUSED.value,
            "explanation": sentence,
        }
        return DockerView(refused, Outcome.REFUSED, None, refused=sentence)
    section: dict[str, Any] = {
        "predictedOutcome": prediction.outcome.value,
        "explanation": prediction.explanation,
        "memoryBytes": allowance.memory_bytes,
        "memorySwapBytes": _memory_swap_bytes(allowance),
        "swapBytes": allowance.swap_bytes,
    }
    observed_outcome = _outcome((observed or {}).get("outcome"))
    if observed is not None and observed_outcome is not None:
        section.update(
            outcome=observed_outcome.value, source=SOURCE_OBSERVED, observed=dict(observed)
        )
        return DockerView(compact(section), observed_outcome, allowance, SOURCE_OBSERVED)
    section.update(outcome=prediction.outcome.value, source=SOURCE_PREDICTED)
    outcome = _PREDICTED_OUTCOME.get(prediction.outcome)
    return DockerView(compact(section), outcome, allowance, SOURCE_PREDICTED)


def _memory_swap_bytes(allowance: Allowance) -> int | None:
    if allowance.memory_bytes is None:
        return None
    if allowance.swap_bytes is None:
        return UNLIMITED
    return allowance.memory_bytes + allowance.swap_bytes


def _outcome(value: Any) -> Outcome | None:
    try:
        return Outcome(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# the hand-over: a Docker run as an annotation, and back


def observation_document(result: RunResult, flags: DockerFlags, now: datetime) -> dict[str, Any]:
    """What ``oomlab parity`` observed, as the annotation's JSON object."""
    progress = result.progress
    return compact(
        {
            "outcome": result.outcome.value,
            "exitCode": result.exit_code,
            "reason": result.reason,
            "oomKilled": result.oom_killed,
            "allocatedBytes": progress.allocated_bytes,
            "peakBytes": result.peak_usage_bytes
            or progress.peak_rss_bytes
            or progress.peak_allocated_bytes,
            "durationSeconds": None if result.duration_s is None else round(result.duration_s, 3),
            "engine": result.host.engine or result.runner,
            "engineVersion": result.host.engine_version,
            "runtime": result.runtime or result.host.runtime,
            "cgroupVersion": result.host.cgroup_version.value,
            "hostSwapBytes": result.host.swap_total_bytes,
            "host": result.host.hostname,
            "flags": compact({"memory": flags.memory, "memorySwap": flags.memory_swap}),
            "observedAt": rfc3339(now),
        }
    )


def observation_annotation(result: RunResult, flags: DockerFlags, now: datetime) -> str:
    return json.dumps(observation_document(result, flags, now), sort_keys=True)


class BadObservation(ValueError):
    """The annotation cannot be folded in; the message is one sentence for the status."""


def parse_observation(text: str, flags: DockerFlags | None) -> dict[str, Any]:
    """status.docker.observed from the annotation's text; raises :class:`BadObservation`."""
    how = "write it with `oomlab parity NAME`"
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise BadObservation(
            f"The {OBSERVATION_ANNOTATION} annotation is not JSON ({exc}); {how}."
        ) from None
    if not isinstance(document, dict):
        raise BadObservation(
            f"The {OBSERVATION_ANNOTATION} annotation is not a JSON object; {how}."
        )
    if flags is None:
        raise BadObservation(
            "A Docker run was handed over, but the experiment has no spec.docker flags to "
            "compare it with."
        )
    outcome = _outcome(document.get("outcome"))
    if outcome is None:
        allowed = ", ".join(o.value for o in Outcome)
        raise BadObservation(
            f"The Docker observation's outcome {document.get('outcome')!r} is not one of "
            f"{allowed}; {how}."
        )
    observed_at = document.get("observedAt")
    if parse_time(observed_at) is None:
        raise BadObservation(
            f"The Docker observation's observedAt {observed_at!r} is not an RFC 3339 time "
            f"with a zone; {how}."
        )
    ran_with = document.get("flags")
    if isinstance(ran_with, Mapping):
        written = compact({"memory": flags.memory, "memorySwap": flags.memory_swap})
        if dict(ran_with) != written:
            raise BadObservation(
                f"The Docker run was made with {dict(ran_with)}, not with this experiment's "
                f"flags {written}; run `oomlab parity NAME` again."
            )
    observed: dict[str, Any] = {"outcome": outcome.value, "recordedAt": observed_at}
    for key in _OBSERVED_INTS:
        value = document.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            observed[key] = value
    for key in _OBSERVED_STRINGS:
        if isinstance(document.get(key), str):
            observed[key] = document[key]
    if isinstance(document.get("oomKilled"), bool):
        observed["oomKilled"] = document["oomKilled"]
    duration = document.get("durationSeconds")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        observed["durationSeconds"] = duration
    return observed


def annotation_of(body: Mapping[str, Any]) -> str | None:
    """The experiment's Docker observation annotation, as written (None when there is none)."""
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(OBSERVATION_ANNOTATION)
    return None if value is None else str(value)
