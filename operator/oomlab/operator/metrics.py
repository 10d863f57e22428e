"""The operator's Prometheus metrics (``prometheus-client``), fed from the experiments' events.

Two kinds, so that memory stays bounded by what exists now:

* counters and a histogram over transitions this process saw (an experiment reaching a final
  phase): labels are outcomes and results only, a fixed handful of series;
* gauges computed at scrape time from one record per experiment that exists now (phase,
  outcome, prediction, swap limit, swap used). A deleted experiment's record is dropped on its
  DELETED event, so its series vanish with it; the per-experiment gauges (labels namespace and
  name) are emitted for at most :data:`PER_EXPERIMENT_SERIES` experiments.

After a restart the counters start from zero (kopf's first listing is not a transition); the
gauges are whole again as soon as kopf has listed the experiments.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from oomlab.rules.classify import Phase
from oomlab.rules.sweep_status import phase_of_experiment, prediction_held
from oomlab.rules.timestamps import parse_time

log = logging.getLogger("oomlab.operator.metrics")

ENV_PORT = "OOMLAB_METRICS_PORT"
ENV_ADDRESS = "OOMLAB_METRICS_ADDRESS"
DEFAULT_PORT = 8081
DEFAULT_ADDRESS = "127.0.0.1"
"""Out of a cluster the operator serves its metrics to this machine only; the Deployment sets
0.0.0.0 so that the Service reaches the pod."""

PER_EXPERIMENT_SERIES = 1000
"""At most this many experiments get their own swap series (the first by namespace and name)."""

LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds. The pod's finishedAt has whole-second resolution, so the latency is +-1 s."""


@dataclass(frozen=True)
class ExperimentRecord:
    namespace: str
    name: str
    phase: Phase | None
    outcome: str
    held: bool | None
    swap_limit_bytes: int | None
    swap_used_bytes: int | None
    finished_at: str | None

    @property
    def terminal(self) -> bool:
        return self.phase is not None and self.phase.terminal

    @property
    def prediction(self) -> str:
        return {True: "held", False: "missed", None: "unknown"}[self.held]


def record_of(body: Mapping[str, Any]) -> ExperimentRecord:
    """What the metrics keep of one experiment."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    kubernetes = status.get("kubernetes") or {}
    phase = phase_of_experiment(body)
    return ExperimentRecord(
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
        phase=phase,
        outcome=str(kubernetes.get("outcome") or (phase.value if phase and phase.terminal else "")),
        held=prediction_held(kubernetes),
        swap_limit_bytes=_int(kubernetes.get("swapLimitBytes")),
        swap_used_bytes=_int((status.get("swapCost") or {}).get("swapBytesAtEnd")),
        finished_at=kubernetes.get("finishedAt"),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class OperatorMetrics:
    """The operator's registry and what feeds it; one per operator process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self._lock = threading.Lock()
        self._experiments: dict[str, ExperimentRecord] = {}
        self._sweeps: dict[str, str] = {}
        self.finished = Counter(
            "oomlab_experiments_finished",
            "Experiments this operator saw reach a final phase, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "oomlab_predictions",
            "Predictions of finished experiments: held (predicted == observed), missed, unknown.",
            ["result"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "oomlab_status_latency_seconds",
            "From the pod's termination (status.kubernetes.finishedAt) to the final status seen.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Current(self))

    def experiment_event(
        self, event_type: str | None, uid: str, body: Mapping[str, Any], now: datetime
    ) -> None:
        """One kopf event of an experiment. ``event_type`` None is kopf's first listing: it
        fills the gauges but is not a transition."""
        if event_type == "DELETED":
            with self._lock:
                self._experiments.pop(uid, None)
            return
        new = record_of(body)
        with self._lock:
            old = self._experiments.get(uid)
            self._experiments[uid] = new
        seen_finishing = new.terminal and (
            (old is not None and not old.terminal) or (old is None and event_type is not None)
        )
        if not seen_finishing:
            return
        self.finished.labels(outcome=new.outcome).inc()
        self.predictions.labels(result=new.prediction).inc()
        finished_at = parse_time(new.finished_at)
        if finished_at is not None and now >= finished_at:
            self.latency.observe((now - finished_at).total_seconds())

    def sweep_event(self, event_type: str | None, uid: str, phase: str | None) -> None:
        with self._lock:
            if event_type == "DELETED":
                self._sweeps.pop(uid, None)
            else:
                self._sweeps[uid] = phase or "Pending"

    def snapshot(self) -> tuple[list[ExperimentRecord], list[str]]:
        with self._lock:
            return list(self._experiments.values()), list(self._sweeps.values())


class _Current:
    """The gauges over what exists now, computed at each scrape."""

    def __init__(self, metrics: OperatorMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        records, sweeps = self._metrics.snapshot()
        by_phase = GaugeMetricFamily(
            "oomlab_experiments",
            "Experiments that exist now, by phase and outcome (empty until it is known).",
            labels=["phase", "outcome"],
        )
        counted: dict[tuple[str, str], int] = {}
        predictions: dict[str, int] = {}
        for record in records:
            key = (record.phase.value if record.phase else "", record.outcome)
            counted[key] = counted.get(key, 0) + 1
            if record.terminal:
                predictions[record.prediction] = predictions.get(record.prediction, 0) + 1
        for (phase, outcome), count in sorted(counted.items()):
            by_phase.add_metric([phase, outcome], count)
        yield by_phase
        held = GaugeMetricFamily(
            "oomlab_experiment_predictions",
            "Finished experiments that exist now, by prediction: held, missed, unknown.",
            labels=["result"],
        )
        for result in ("held", "missed", "unknown"):
            held.add_metric([result], predictions.get(result, 0))
        yield held
        limit = GaugeMetricFamily(
            "oomlab_experiment_swap_limit_bytes",
            "The swap limit the workload read in its own cgroup (-1: unlimited).",
            labels=["namespace", "name"],
        )
        used = GaugeMetricFamily(
            "oomlab_experiment_swap_used_bytes",
            "Swap the container held when its workload finished (with spec.measureSwapCost).",
            labels=["namespace", "name"],
        )
        shown = sorted(records, key=lambda r: (r.namespace, r.name))[:PER_EXPERIMENT_SERIES]
        for record in shown:
            if record.swap_limit_bytes is not None:
                limit.add_metric([record.namespace, record.name], record.swap_limit_bytes)
            if record.swap_used_bytes is not None:
                used.add_metric([record.namespace, record.name], record.swap_used_bytes)
        yield limit
        yield used
        by_sweep_phase = GaugeMetricFamily(
            "oomlab_sweeps", "OOMSweeps that exist now, by phase.", labels=["phase"]
        )
        for phase in sorted(set(sweeps)):
            by_sweep_phase.add_metric([phase], sweeps.count(phase))
        yield by_sweep_phase


def serve(metrics: OperatorMetrics, environ: Mapping[str, str] | None = None) -> Any:
    """Serve /metrics on OOMLAB_METRICS_ADDRESS:OOMLAB_METRICS_PORT (port 0: not at all).
    Returns the server (to shut down on cleanup), or None."""
    env = os.environ if environ is None else environ
    port = int(env.get(ENV_PORT) or DEFAULT_PORT)
    if port == 0:
        return None
    address = env.get(ENV_ADDRESS) or DEFAULT_ADDRESS
    try:
        server, _thread = start_http_server(port, addr=address, registry=metrics.registry)
    except OSError as exc:
        log.warning("cannot serve metrics on %s:%d: %s", address, port, exc)
        return None
    log.info("metrics on http://%s:%d/metrics", address, port)
    return server
