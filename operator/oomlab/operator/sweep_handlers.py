"""OOMSweeps and the operator's metrics: kopf handlers, thin.

A sweep is reconciled whenever something about it may have changed: kopf's first listing of
sweeps (so after a restart), a new sweep, and every event of one of its experiments. One
reconciliation reads the sweep and its experiments from the API server (nothing is remembered
between them, so a restart loses nothing), creates the cells' experiments that are absent and may
start (by name, adopted into the sweep: a second try finds them, and deleting the sweep deletes
them), and writes the sweep's status. Reconciliations of one sweep never overlap: events that
arrive during one are folded into a single next one.

Every experiment event also feeds :mod:`oomlab.operator.metrics`, served on
OOMLAB_METRICS_PORT from startup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from oomlab.experiment import GROUP, PLURAL, VERSION
from oomlab.operator import sweep_api
from oomlab.operator.api import as_body
from oomlab.operator.conditions import condition_of, set_condition
from oomlab.operator.metrics import OperatorMetrics, serve
from oomlab.operator.state import MEMO_KEY, OperatorState
from oomlab.operator.status import status_patch
from oomlab.rules.classify import Phase
from oomlab.rules.sweep import SWEEP_LABEL, Cell, cells_to_start, max_running
from oomlab.rules.sweep_status import SweepPhase, phase_of_experiment, summarize
from oomlab.sweep import SWEEP_PLURAL, plan

log = logging.getLogger("oomlab.operator.sweeps")

METRICS_KEY = "oomlab-metrics"
SWEEPS_KEY = "oomlab-sweeps"
CONDITION_DONE = "Done"
RETRY_S = 5.0
"""After a failed reconciliation (the API server busy or away) the next try comes this much
later, for as long as the operator runs."""


@dataclass
class SweepWorkers:
    """Which sweeps are being reconciled now, and which need one more pass after it."""

    busy: set[tuple[str, str]] = field(default_factory=set)
    again: set[tuple[str, str]] = field(default_factory=set)
    refused: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(namespace, sweep uid, cell) the API server refused, with its sentence; kept for this
    process only (after a restart the same create is refused again, with the same sentence)."""
    servers: list[Any] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """Reconciliations under way, held so they are not garbage-collected mid-flight."""


def _now() -> datetime:
    return datetime.now(UTC)


def metrics_of(memo: kopf.Memo) -> OperatorMetrics:
    metrics = memo.get(METRICS_KEY)
    if not isinstance(metrics, OperatorMetrics):
        metrics = memo[METRICS_KEY] = OperatorMetrics()
    return metrics


def workers_of(memo: kopf.Memo) -> SweepWorkers:
    workers = memo.get(SWEEPS_KEY)
    if not isinstance(workers, SweepWorkers):
        workers = memo[SWEEPS_KEY] = SweepWorkers()
    return workers


def _max_bytes(memo: kopf.Memo) -> int | None:
    state = memo.get(MEMO_KEY)
    return state.config.max_experiment_bytes if isinstance(state, OperatorState) else None


@kopf.on.startup()
def serve_metrics(*, memo: kopf.Memo, **_: Any) -> None:
    server = serve(metrics_of(memo))
    if server is not None:
        workers_of(memo).servers.append(server)


@kopf.on.cleanup()
def stop_metrics(*, memo: kopf.Memo, **_: Any) -> None:
    workers = workers_of(memo)
    for task in workers.tasks:
        task.cancel()
    for server in workers.servers:
        server.shutdown()
        server.server_close()  # the port is free again for an operator started in this process
    workers.servers.clear()


@kopf.on.event(GROUP, VERSION, SWEEP_PLURAL)
async def sweep_event(
    *, type: str | None, body: kopf.Body, namespace: str | None, name: str, uid: str,
    memo: kopf.Memo, **_: Any,
) -> None:  # fmt: skip
    """kopf's listing (type None) and a new sweep are reconciled; the spec cannot change, and
    the status changes are this operator's own."""
    metrics_of(memo).sweep_event(type, uid, (body.get("status") or {}).get("phase"))
    if type in (None, "ADDED") and namespace:
        reconcile_in_background(memo, namespace, name)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def experiment_metrics_and_sweep(
    *, type: str | None, body: kopf.Body, namespace: str | None, uid: str, memo: kopf.Memo,
    **_: Any,
) -> None:  # fmt: skip
    """The metrics, and the experiment's sweep if it has one."""
    metrics_of(memo).experiment_event(type, uid, body, _now())
    sweep = (body.get("metadata", {}).get("labels") or {}).get(SWEEP_LABEL)
    if sweep and namespace:
        reconcile_in_background(memo, namespace, sweep)


def reconcile_in_background(memo: kopf.Memo, namespace: str, name: str) -> None:
    """kopf handles one object's events one after another: a reconciliation awaited here would
    hold back the experiment's own handlers (its pod's creation) for the sweep's API calls."""
    workers = workers_of(memo)
    if (namespace, name) in workers.busy:
        workers.again.add((namespace, name))
        return
    task = asyncio.get_running_loop().create_task(reconcile_soon(memo, namespace, name))
    workers.tasks.add(task)
    task.add_done_callback(workers.tasks.discard)


async def reconcile_soon(memo: kopf.Memo, namespace: str, name: str) -> None:
    """Reconcile the sweep now, or once more after the reconciliation under way."""
    workers, key = workers_of(memo), (namespace, name)
    if key in workers.busy:
        workers.again.add(key)
        return
    workers.busy.add(key)
    try:
        while True:
            workers.again.discard(key)
            try:
                await reconcile(namespace, name, workers, max_bytes=_max_bytes(memo))
            except Exception:
                log.exception("sweep %s/%s: reconciliation failed; again in %.0f s", *key, RETRY_S)
                await asyncio.sleep(RETRY_S)
                workers.again.add(key)
            if key not in workers.again:
                return
    finally:
        workers.busy.discard(key)


async def reconcile(
    namespace: str, name: str, workers: SweepWorkers, *, max_bytes: int | None = None
) -> None:
    """Create the cells that may start now and write the sweep's status."""
    sweep = await asyncio.to_thread(sweep_api.find_sweep, namespace, name)
    if sweep is None or sweep["metadata"].get("deletionTimestamp"):
        return
    uid = str(sweep["metadata"]["uid"])
    cells_plan = plan(sweep, max_bytes=max_bytes)
    invalid = dict(cells_plan.invalid)
    invalid.update(
        {
            cell: why
            for (ns, owner, cell), why in workers.refused.items()
            if (ns, owner) == (namespace, uid)
        }
    )
    experiments = await asyncio.to_thread(sweep_api.list_cells, namespace, name, uid)
    phases: dict[str, Phase | None] = {n: phase_of_experiment(b) for n, b in experiments.items()}
    starting = cells_to_start(
        cells_plan.cells, phases, max_running(sweep.get("spec") or {}), skip=frozenset(invalid)
    )
    for cell in starting:
        document = dict(cells_plan.documents[cell.name])
        kopf.adopt(document, owner=as_body(sweep))
        refused = await asyncio.to_thread(sweep_api.create_cell, namespace, document)
        if refused is not None:
            workers.refused[(namespace, uid, cell.name)] = refused
            invalid[cell.name] = refused
            log.warning("sweep %s/%s: cell %s refused: %s", namespace, name, cell.name, refused)
        else:
            experiments.setdefault(cell.name, document)
    desired = sweep_status(sweep, cells_plan.error, cells_plan.cells, experiments, invalid)
    patch = status_patch(sweep.get("status") or {}, desired)
    if not patch:
        return
    await asyncio.to_thread(sweep_api.patch_sweep_status, namespace, name, patch)
    was_done = (sweep.get("status") or {}).get("phase") == SweepPhase.DONE.value
    if desired["phase"] == SweepPhase.DONE.value and not was_done:
        kopf.info(as_body(sweep), reason="Done", message=str(desired["message"]))
        for key in [k for k in workers.refused if k[:2] == (namespace, uid)]:
            del workers.refused[key]


def sweep_status(
    sweep: Mapping[str, Any],
    error: str | None,
    cells: Sequence[Cell],
    experiments: Mapping[str, Mapping[str, Any]],
    invalid: Mapping[str, str],
) -> dict[str, Any]:
    """The sweep's whole desired status, with its Done condition."""
    current = sweep.get("status") or {}
    generation = (sweep.get("metadata") or {}).get("generation")
    if error is not None:
        status: dict[str, Any] = {"phase": SweepPhase.INVALID.value, "message": error}
        done, reason = False, "Invalid"
    else:
        summary = summarize(cells, experiments, invalid)
        status = summary.status
        done, reason = summary.done, ("AllCellsFinished" if summary.done else "CellsRunning")
    old = condition_of(current, CONDITION_DONE)
    unchanged = old is not None and old.get("status") == ("True" if done else "False")
    if unchanged and old is not None and old.get("message") == status["message"]:
        status["conditions"] = list(current.get("conditions") or [])
    else:
        status["conditions"] = set_condition(
            current.get("conditions"),
            type_=CONDITION_DONE,
            status=done,
            reason=reason,
            message=str(status["message"]),
            now=_now(),
            generation=int(generation) if generation is not None else None,
        )
    if generation is not None:
        status["observedGeneration"] = int(generation)
    return status
