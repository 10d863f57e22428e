"""The OOMSweep handlers and the metrics against a fake API (sweep_api's calls replaced).

The fake holds one sweep and its experiments; the test plays the other side (experiments
running and finishing) and checks what a user sees: which experiments exist, owned by the
sweep, and the sweep's status. A restart is a fresh set of workers (the memo is per process).
"""

from __future__ import annotations

import asyncio
import copy
import socket
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import kopf
import pytest
from prometheus_client import generate_latest

from oomlab.operator import sweep_api
from oomlab.operator import sweep_handlers as sh
from oomlab.operator.metrics import OperatorMetrics, serve
from oomlab.rules.sweep import SWEEP_LABEL
from oomlab.rules.timestamps import rfc3339

pytestmark = pytest.mark.unit

NS = "lab"
SWEEP_UID = "0d1f6c1e-sweep"
TEMPLATE: dict[str, Any] = {
    "workload": {"mode": "bulk", "size": "16Mi", "chunk": "8Mi", "imagePullPolicy": "Never"},
    "resources": {"limits": {"memory": "64Mi"}},
    "timeoutSeconds": 120,
}


class FakeAPI:
    def __init__(self, axes: Mapping[str, Any], max_running: int = 2) -> None:
        self.sweep: dict[str, Any] | None = {
            "apiVersion": "oomlab.dev/v1alpha1",
            "kind": "OOMSweep",
            "metadata": {"name": "grid", "namespace": NS, "uid": SWEEP_UID, "generation": 1},
            "spec": {
                "template": TEMPLATE,
                "axes": dict(axes),
                "maxRunningPerNodeKind": max_running,
            },
        }
        self.experiments: dict[str, dict[str, Any]] = {}
        self.creates: list[str] = []
        self.refuse: dict[str, str] = {}
        self.status_patches = 0
        self.events: list[tuple[str, str]] = []

    def find_sweep(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.sweep)

    def patch_sweep_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        assert self.sweep is not None
        self.status_patches += 1
        status = self.sweep.setdefault("status", {})
        for key, value in patch.items():
            if isinstance(value, Mapping) and isinstance(status.get(key), dict):
                status[key].update(value)
            else:
                status[key] = copy.deepcopy(value)

    def create_cell(self, namespace: str, document: Mapping[str, Any]) -> str | None:
        name = document["metadata"]["name"]
        self.creates.append(name)
        if name in self.refuse:
            return self.refuse[name]
        self.experiments.setdefault(name, copy.deepcopy(dict(document)))
        return None

    def list_cells(self, namespace: str, sweep: str, uid: str) -> dict[str, dict[str, Any]]:
        return {
            name: copy.deepcopy(body)
            for name, body in self.experiments.items()
            if body["metadata"]["labels"][SWEEP_LABEL] == sweep
            and any(o["uid"] == uid for o in body["metadata"].get("ownerReferences", []))
        }

    def finish(self, name: str, predicted: str, observed: str) -> None:
        self.experiments[name]["status"] = {
            "phase": observed,
            "kubernetes": {"predictedOutcome": predicted, "outcome": observed},
        }

    def run(self, name: str) -> None:
        self.experiments[name]["status"] = {"phase": "Running"}

    @property
    def status(self) -> dict[str, Any]:
        assert self.sweep is not None
        return dict(self.sweep.get("status") or {})


@pytest.fixture
def patched() -> Iterator[list[FakeAPI]]:
    holder: list[FakeAPI] = []

    def call(method: str) -> Any:
        return lambda *args, **kwargs: getattr(holder[0], method)(*args, **kwargs)

    def info(body: Any, *, reason: str, message: str) -> None:
        holder[0].events.append((reason, message))

    with (
        mock.patch.object(sweep_api, "find_sweep", call("find_sweep")),
        mock.patch.object(sweep_api, "patch_sweep_status", call("patch_sweep_status")),
        mock.patch.object(sweep_api, "create_cell", call("create_cell")),
        mock.patch.object(sweep_api, "list_cells", call("list_cells")),
        mock.patch.object(kopf, "info", info),
    ):
        yield holder


def reconcile(api: FakeAPI, workers: sh.SweepWorkers | None = None) -> sh.SweepWorkers:
    workers = workers or sh.SweepWorkers()
    asyncio.run(sh.reconcile(NS, "grid", workers))
    return workers


def test_creates_at_most_n_per_node_kind_owned_by_the_sweep(patched: list[FakeAPI]) -> None:
    api = FakeAPI({"limits": ["32Mi", "64Mi", "96Mi"], "swapBehaviors": ["NoSwap", "LimitedSwap"]})
    patched.append(api)
    reconcile(api)
    # cells alternate NoSwap, LimitedSwap: two of each kind may run
    assert sorted(api.experiments) == ["grid-000", "grid-001", "grid-002", "grid-003"]
    owner = api.experiments["grid-000"]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("OOMSweep", SWEEP_UID, True)
    assert api.experiments["grid-000"]["metadata"]["namespace"] == NS
    assert api.status["phase"] == "Running"
    assert api.status["progress"] == "0/6"


def test_a_sweep_runs_to_done_with_every_prediction_counted(patched: list[FakeAPI]) -> None:
    api = FakeAPI({"limits": ["32Mi", "64Mi", "96Mi", "128Mi"]}, max_running=1)
    patched.append(api)
    workers = sh.SweepWorkers()
    for step in range(4):
        reconcile(api, workers)
        assert len(api.experiments) == step + 1  # one at a time
        name = f"grid-{step:03d}"
        api.run(name)
        reconcile(api, workers)
        assert len(api.experiments) == step + 1
        api.finish(name, "Completed", "OOMKilled" if step == 3 else "Completed")
    reconcile(api, workers)
    status = api.status
    assert status["phase"] == "Done"
    assert status["progress"] == "4/4"
    assert (status["predictionsHeld"], status["predictionsMissed"]) == (3, 1)
    assert status["counts"] == {"Completed": 3, "OOMKilled": 1}
    (done,) = status["conditions"]
    assert (done["type"], done["status"], done["reason"]) == ("Done", "True", "AllCellsFinished")
    assert [reason for reason, _ in api.events] == ["Done"]
    patches = api.status_patches
    reconcile(api, workers)
    assert api.status_patches == patches  # nothing changed, nothing written


def test_a_restart_mid_sweep_creates_nothing_twice(patched: list[FakeAPI]) -> None:
    api = FakeAPI({"limits": ["32Mi", "64Mi", "96Mi"]}, max_running=2)
    patched.append(api)
    reconcile(api)
    assert sorted(api.experiments) == ["grid-000", "grid-001"]
    # the operator restarts (fresh memo) before it saw any status: nothing new to start
    api.creates.clear()
    reconcile(api, sh.SweepWorkers())
    assert api.creates == []
    api.finish("grid-000", "Completed", "Completed")
    reconcile(api, sh.SweepWorkers())
    assert api.creates == ["grid-002"]
    assert len(api.experiments) == 3


def test_a_cell_the_api_server_refuses_gets_a_row_and_is_not_retried(
    patched: list[FakeAPI],
) -> None:
    api = FakeAPI({"limits": ["32Mi", "64Mi"]}, max_running=5)
    api.refuse["grid-001"] = "spec.workload.size: Invalid value"
    patched.append(api)
    workers = reconcile(api)
    row = api.status["cells"][1]
    assert (row["phase"], row["message"]) == ("Invalid", "spec.workload.size: Invalid value")
    api.creates.clear()
    reconcile(api, workers)
    assert api.creates == []


def test_an_invalid_cell_is_never_created(patched: list[FakeAPI]) -> None:
    api = FakeAPI({"limits": ["32Mi", "64Mi"], "requests": ["48Mi"]})
    patched.append(api)
    reconcile(api)
    assert sorted(api.experiments) == ["grid-001"]
    assert api.status["cells"][0]["phase"] == "Invalid"


def test_a_sweep_over_the_cap_is_invalid(patched: list[FakeAPI]) -> None:
    limits = [f"{i}Mi" for i in range(1, 17)]
    api = FakeAPI({"limits": limits, "sizes": [f"{i}Mi" for i in range(1, 14)]})
    patched.append(api)
    reconcile(api)
    assert api.experiments == {}
    assert api.status["phase"] == "Invalid"
    assert "200" in api.status["message"]


def test_a_deleted_sweep_is_left_alone(patched: list[FakeAPI]) -> None:
    api = FakeAPI({"limits": ["32Mi"]})
    api.sweep = None
    patched.append(api)
    reconcile(api)
    assert api.creates == []


def test_events_during_a_reconciliation_fold_into_one_more(patched: list[FakeAPI]) -> None:
    api = FakeAPI({"limits": ["32Mi"]})
    patched.append(api)
    memo = kopf.Memo()
    calls: list[str] = []
    gate = asyncio.Event()

    async def slow(namespace: str, name: str, workers: sh.SweepWorkers, **_: Any) -> None:
        calls.append(name)
        await gate.wait()

    async def scenario() -> None:
        with mock.patch.object(sh, "reconcile", slow):
            first = asyncio.create_task(sh.reconcile_soon(memo, NS, "grid"))
            await asyncio.sleep(0)
            for _ in range(5):
                await sh.reconcile_soon(memo, NS, "grid")  # returns at once: one is under way
            gate.set()
            await first

    asyncio.run(scenario())
    assert calls == ["grid", "grid"]
    assert sh.workers_of(memo).busy == set()


def test_a_cell_event_never_waits_for_the_sweep(patched: list[FakeAPI]) -> None:
    """kopf runs one object's handlers in turn: the experiment's own handlers (its pod) must not
    wait behind the sweep's API calls."""
    memo = kopf.Memo()
    gate = asyncio.Event()
    reconciled: list[str] = []

    async def slow(namespace: str, name: str, workers: sh.SweepWorkers, **_: Any) -> None:
        await gate.wait()
        reconciled.append(name)

    body = kopf.Body(
        {"metadata": {"name": "grid-000", "namespace": NS, "labels": {SWEEP_LABEL: "grid"}}}
    )

    async def scenario() -> None:
        with mock.patch.object(sh, "reconcile", slow):
            await sh.experiment_metrics_and_sweep(
                type="ADDED", body=body, namespace=NS, uid="u0", memo=memo
            )
            assert reconciled == []  # the handler returned; the sweep's pass is still waiting
            (task,) = sh.workers_of(memo).tasks
            gate.set()
            await task

    asyncio.run(scenario())
    assert reconciled == ["grid"]
    assert sh.workers_of(memo).tasks == set()


# --- metrics ------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def experiment_body(name: str, phase: str, **kubernetes: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": name, "uid": f"uid-{name}"},
        "status": {"phase": phase, "kubernetes": kubernetes},
    }


def scrape(metrics: OperatorMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_metrics_count_transitions_and_current_experiments() -> None:
    metrics = OperatorMetrics()
    finished = rfc3339(NOW - timedelta(seconds=2))
    metrics.experiment_event("ADDED", "u1", experiment_body("a", "Pending"), NOW)
    metrics.experiment_event("MODIFIED", "u1", experiment_body("a", "Running"), NOW)
    done = experiment_body(
        "a", "OOMKilled", outcome="OOMKilled", predictedOutcome="OOMKilled",
        swapLimitBytes=0, finishedAt=finished,
    )  # fmt: skip
    metrics.experiment_event("MODIFIED", "u1", done, NOW)
    metrics.experiment_event("MODIFIED", "u1", done, NOW)  # seen again: not a second finish
    missed = experiment_body("b", "Completed", outcome="Completed", predictedOutcome="OOMKilled")
    metrics.experiment_event("ADDED", "u2", experiment_body("b", "Running"), NOW)
    metrics.experiment_event("MODIFIED", "u2", missed, NOW)
    text = scrape(metrics)
    expected = [
        'oomlab_experiments_finished_total{outcome="OOMKilled"} 1.0',
        'oomlab_experiments_finished_total{outcome="Completed"} 1.0',
        'oomlab_predictions_total{result="held"} 1.0',
        'oomlab_predictions_total{result="missed"} 1.0',
        'oomlab_experiments{outcome="OOMKilled",phase="OOMKilled"} 1.0',
        'oomlab_experiment_predictions{result="held"} 1.0',
        'oomlab_experiment_swap_limit_bytes{name="a",namespace="lab"} 0.0',
        "oomlab_status_latency_seconds_count 1.0",
        'oomlab_status_latency_seconds_bucket{le="2.0"} 1.0',
        'oomlab_status_latency_seconds_bucket{le="1.0"} 0.0',
        "process_resident_memory_bytes",
    ]
    assert [series for series in expected if series not in text] == [], text


def test_a_restart_listing_is_not_a_transition() -> None:
    metrics = OperatorMetrics()
    done = experiment_body("a", "Completed", outcome="Completed", predictedOutcome="Completed")
    metrics.experiment_event(None, "u1", done, NOW)
    text = scrape(metrics)
    assert "oomlab_experiments_finished_total{" not in text
    assert 'oomlab_experiments{outcome="Completed",phase="Completed"} 1.0' in text


def test_a_deleted_experiment_leaves_no_series_behind() -> None:
    metrics = OperatorMetrics()
    for i in range(50):
        body = experiment_body(f"e{i}", "Completed", outcome="Completed", swapLimitBytes=4096)
        metrics.experiment_event("ADDED", f"u{i}", body, NOW)
    assert scrape(metrics).count("oomlab_experiment_swap_limit_bytes{") == 50
    for i in range(50):
        metrics.experiment_event("DELETED", f"u{i}", {}, NOW)
    text = scrape(metrics)
    assert "oomlab_experiment_swap_limit_bytes{" not in text
    assert "oomlab_experiments{" not in text
    assert metrics.snapshot() == ([], [])


def test_sweeps_by_phase() -> None:
    metrics = OperatorMetrics()
    metrics.sweep_event(None, "s1", "Done")
    metrics.sweep_event("ADDED", "s2", None)
    assert 'oomlab_sweeps{phase="Done"} 1.0' in scrape(metrics)
    assert 'oomlab_sweeps{phase="Pending"} 1.0' in scrape(metrics)
    metrics.sweep_event("DELETED", "s1", None)
    assert 'phase="Done"' not in scrape(metrics)


def test_port_zero_serves_nothing() -> None:
    assert serve(OperatorMetrics(), {"OOMLAB_METRICS_PORT": "0"}) is None


def test_metrics_are_served_on_loopback_by_default() -> None:
    metrics = OperatorMetrics()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve(metrics, {"OOMLAB_METRICS_PORT": str(port)})
    assert server is not None
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b"oomlab_experiments" in response.read()
    finally:
        sh.stop_metrics(memo=memo_with(server))
    # closed: the same port serves a second operator in this process
    again = serve(metrics, {"OOMLAB_METRICS_PORT": str(port)})
    assert again is not None
    sh.stop_metrics(memo=memo_with(again))


def memo_with(server: Any) -> kopf.Memo:
    memo = kopf.Memo()
    sh.workers_of(memo).servers.append(server)
    return memo
