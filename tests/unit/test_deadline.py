"""The deadline policy as a table: an experiment's status and the time now in, which alarms to
set (and when) and which to drop out. No event loop."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from oomlab.experiment import ExperimentSpec
from oomlab.operator.deadline import Deadline, DeadlinePlan, plan_deadlines

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SPEC = {
    "workload": {"mode": "bulk", "size": "1000Mi"},
    "resources": {"requests": {"memory": "250Mi"}, "limits": {"memory": "500Mi"}},
    "timeoutSeconds": 300,
}
TTL = {**SPEC, "ttlSecondsAfterFinished": 60}
CREATED = "2026-01-01T11:58:00Z"

TIMEOUT, CLEANUP = Deadline.TIMEOUT, Deadline.CLEANUP
TWIN_TIMEOUT, TWIN_CLEANUP = Deadline.TWIN_TIMEOUT, Deadline.TWIN_CLEANUP


def at(clock: str) -> datetime:
    hour, minute, second = (int(part) for part in clock.split(":"))
    return datetime(2026, 1, 1, hour, minute, second, tzinfo=UTC)


def experiment(status: dict[str, Any] | None, created: str | None = CREATED) -> dict[str, Any]:
    metadata = {"name": "x", "namespace": "lab", "uid": "u1"}
    if created is not None:
        metadata["creationTimestamp"] = created
    return {"metadata": metadata, "status": status or {}}


def finished(phase: str, at_: str | None, **more: Any) -> dict[str, Any]:
    kubernetes = {"finishedAt": at_} if at_ else {}
    return {"phase": phase, "kubernetes": kubernetes, **more}


def cost(state: str, **fields: Any) -> dict[str, Any]:
    return {"swapCost": {"state": state, **fields}}


CASES = [
    # (case, status, spec, timed out now, due, dropped)
    ("new: from its creation", None, SPEC, False, {TIMEOUT: at("12:03:00")}, set()),
    ("pending", {"phase": "Pending"}, SPEC, False, {TIMEOUT: at("12:03:00")}, set()),
    (
        "running: from the container's start",
        {"phase": "Running", "kubernetes": {"startedAt": "2026-01-01T11:59:00Z"}},
        SPEC, False, {TIMEOUT: at("12:04:00")}, set(),
    ),
    (
        "a start in the future (another clock): never later than the timeout from now",
        {"phase": "Running", "kubernetes": {"startedAt": "2026-01-01T13:00:00Z"}},
        SPEC, False, {TIMEOUT: at("12:05:00")}, set(),
    ),
    (
        "long overdue: due now or earlier, so it goes off at once",
        {"phase": "Running", "kubernetes": {"startedAt": "2026-01-01T10:00:00Z"}},
        SPEC, False, {TIMEOUT: at("10:05:00")}, set(),
    ),
    (
        "finished with a ttl: the pod goes ttl after it finished",
        finished("OOMKilled", "2026-01-01T11:59:30Z"),
        TTL, False, {CLEANUP: at("12:00:30")}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "finished without a ttl: the pod stays",
        finished("Completed", "2026-01-01T11:59:30Z"),
        SPEC, False, {}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "finished in the future (another clock): never later than the ttl from now",
        finished("Failed", "2026-01-01T14:00:00Z"),
        TTL, False, {CLEANUP: at("12:01:00")}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "no finishedAt: the Finished condition's time",
        finished("Failed", None, conditions=[
            {"type": "Finished", "status": "True", "lastTransitionTime": "2026-01-01T11:59:10Z"}
        ]),
        TTL, False, {CLEANUP: at("12:00:10")}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "invalid: nothing ran, no time to count from",
        {"phase": "Invalid"}, TTL, False, {}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "timed out by this very write: the pod goes now, ttl or not",
        finished("TimedOut", "2026-01-01T11:59:59Z"),
        SPEC, True, {CLEANUP: NOW}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "the twin is measured: timeout from its creation",
        finished("Completed", "2026-01-01T11:57:00Z",
                 **cost("Measuring", twinPodName="t", twinCreatedAt="2026-01-01T11:58:30Z")),
        SPEC, False, {TWIN_TIMEOUT: at("12:03:30")}, {TIMEOUT},
    ),
    (
        "the twin is measured, and the experiment's pod has a ttl",
        finished("Completed", "2026-01-01T11:59:30Z",
                 **cost("Measuring", twinPodName="t", twinCreatedAt="2026-01-01T11:59:40Z")),
        TTL, False, {TWIN_TIMEOUT: at("12:04:40"), CLEANUP: at("12:00:30")}, {TIMEOUT},
    ),
    (
        "measuring, but the twin is not made yet: no twin deadline",
        finished("Completed", "2026-01-01T11:59:30Z", **cost("Measuring")),
        SPEC, False, {}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "the cost is known: the twin goes ttl after",
        finished("Completed", "2026-01-01T11:55:00Z",
                 **cost("Done", twinPodName="t", finishedAt="2026-01-01T11:59:45Z")),
        TTL, False,
        {TWIN_CLEANUP: at("12:00:45"), CLEANUP: at("11:56:00")}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "the cost is known without a twin (no swap used): nothing to remove",
        finished("Completed", "2026-01-01T11:59:30Z",
                 **cost("Done", finishedAt="2026-01-01T11:59:30Z")),
        TTL, False, {CLEANUP: at("12:00:30")}, {TIMEOUT, TWIN_TIMEOUT},
    ),
    (
        "the cost is known, no ttl: the twin stays",
        finished("Completed", "2026-01-01T11:59:30Z",
                 **cost("Done", twinPodName="t", finishedAt="2026-01-01T11:59:45Z")),
        SPEC, False, {}, {TIMEOUT, TWIN_TIMEOUT},
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "spec", "timed_out_now", "due", "dropped"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan(
    status: dict[str, Any] | None,
    spec: dict[str, Any],
    timed_out_now: bool,
    due: dict[Deadline, datetime],
    dropped: set[Deadline],
) -> None:
    plan = plan_deadlines(
        experiment(status), ExperimentSpec.from_spec(spec), NOW, timed_out_now=timed_out_now
    )
    assert plan == DeadlinePlan(due=due, dropped=frozenset(dropped))


def test_an_experiment_without_any_time_gets_no_timeout() -> None:
    plan = plan_deadlines(experiment(None, created=None), ExperimentSpec.from_spec(SPEC), NOW)
    assert plan == DeadlinePlan()
