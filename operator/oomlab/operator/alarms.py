"""One-shot timers on the operator's event loop, one per experiment and deadline, and arming them
from the deadline policy (:mod:`.deadline`).

There is no kopf timer behind them, so no finalizer, and deleting an experiment never waits on
the operator. They are armed again from the status after every status write and on every
restart (resume), so none is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from oomlab.experiment import ExperimentSpec, InvalidSpec
from oomlab.operator.deadline import Deadline, plan_deadlines

log = logging.getLogger("oomlab.operator.alarms")

ALARM_RETRY_S = 5.0

Action = Callable[[], Coroutine[Any, Any, None]]


class Alarms:
    """One-shot timers, keyed. Setting a key again replaces its alarm. A failing action is
    retried after a pause."""

    def __init__(self) -> None:
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def set(self, key: str, at: datetime, action: Action) -> None:
        self.cancel(key)
        delay = max(0.0, (at - datetime.now(UTC)).total_seconds())
        loop = asyncio.get_running_loop()
        self._handles[key] = loop.call_later(delay, self._fire, key, action)

    def cancel(self, key: str) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for key in list(self._handles):
            self.cancel(key)

    def pending(self) -> list[str]:
        return sorted(self._handles)

    def _fire(self, key: str, action: Action) -> None:
        self._handles.pop(key, None)
        task = asyncio.ensure_future(self._run(key, action))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, action: Action) -> None:
        try:
            await action()
        except Exception:
            log.exception("alarm %s failed; retrying in %ss", key, ALARM_RETRY_S)
            if key not in self._handles:
                self.set(key, datetime.now(UTC) + timedelta(seconds=ALARM_RETRY_S), action)


@dataclass(frozen=True)
class ExperimentRef:
    """Which experiment an alarm is for; the uid tells a re-created one of the same name apart."""

    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ExperimentRef:
        meta = body.get("metadata") or {}
        return cls(meta["namespace"], meta["name"], meta["uid"])


def alarm_key(deadline: Deadline, uid: str) -> str:
    return f"{deadline.value}/{uid}"


def cancel_experiment_alarms(alarms: Alarms, uid: str) -> None:
    for deadline in Deadline:
        alarms.cancel(alarm_key(deadline, uid))


def arm(
    alarms: Alarms,
    body: Mapping[str, Any],
    passed: Callable[[Deadline, ExperimentRef], Coroutine[Any, Any, None]],
    *,
    timed_out_now: bool = False,
) -> None:
    """Set and drop the experiment's alarms as the deadline policy says for ``body``; an alarm
    calls ``passed(deadline, experiment)`` when it goes off."""
    experiment = ExperimentRef.of(body)
    try:
        spec = ExperimentSpec.from_spec(body.get("spec") or {})
    except InvalidSpec:
        return
    plan = plan_deadlines(body, spec, datetime.now(UTC), timed_out_now=timed_out_now)
    for deadline in plan.dropped:
        alarms.cancel(alarm_key(deadline, experiment.uid))
    for deadline, at in plan.due.items():
        alarms.set(alarm_key(deadline, experiment.uid), at, _action(passed, deadline, experiment))


def _action(
    passed: Callable[[Deadline, ExperimentRef], Coroutine[Any, Any, None]],
    deadline: Deadline,
    experiment: ExperimentRef,
) -> Action:
    return lambda: passed(deadline, experiment)
