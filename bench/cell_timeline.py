"""Where a sweep's time goes, cell by cell: watches one namespace's OOMExperiments and their pods
while a sweep (``oomlab report``'s, or any) runs, stamps each step with this machine's clock as
the API server shows it, and prints per cell: waiting for its turn, experiment -> pod, pod ->
scheduled, scheduled -> container running (sandbox and container start on the node), running ->
terminated (the workload, interpreter start included), terminated -> the experiment's final
status (the operator), and that status -> the next cell of its node kind created (the sweep).

    python bench/cell_timeline.py [--namespace default] [--sweep oomlab-report] [--out F.json]

It stops when the sweep is Done (or on Ctrl-C or SIGTERM) and prints the table; ``--out`` keeps
the stamps.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from kubernetes import client, watch

from _lab import project_cluster
from oomlab.experiment import ANNOTATION_EXPERIMENT, GROUP, LABEL_NAME, PLURAL, POD_APP, VERSION
from oomlab.rules.classify import TERMINAL_PHASES as TERMINAL
from oomlab.rules.sweep import SWEEP_LABEL
from oomlab.sweep import SWEEP_PLURAL


@dataclass
class Stamps:
    """Wall-clock seconds at which this watcher first saw each step of one cell."""

    experiment: str
    node_kind: str = ""
    created: float | None = None
    pod_created: float | None = None
    scheduled: float | None = None
    running: float | None = None
    terminated: float | None = None
    final: float | None = None
    outcome: str = ""
    node: str = ""
    workload_s: float | None = None
    """The container's own start to finish, as the kubelet wrote them (whole seconds)."""
    extra: dict[str, float] = field(default_factory=dict)


class Timeline:
    def __init__(self, namespace: str, sweep: str) -> None:
        self.namespace, self.sweep = namespace, sweep
        self.cells: dict[str, Stamps] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.sweep_created: float | None = None

    def cell(self, name: str) -> Stamps:
        return self.cells.setdefault(name, Stamps(name))

    def experiment(self, body: dict[str, Any]) -> None:
        now = time.time()
        meta, status = body["metadata"], body.get("status") or {}
        if (meta.get("labels") or {}).get(SWEEP_LABEL) != self.sweep:
            return
        with self.lock:
            stamps = self.cell(meta["name"])
            stamps.created = stamps.created or now
            if status.get("phase") in TERMINAL and stamps.final is None:
                stamps.final = now
                stamps.outcome = str(status.get("phase"))

    def pod(self, pod: Any) -> None:
        now = time.time()
        owner = (pod.metadata.annotations or {}).get(ANNOTATION_EXPERIMENT)
        if not owner or not owner.startswith(self.sweep):
            return
        with self.lock:
            stamps = self.cell(owner)
            stamps.pod_created = stamps.pod_created or now
            if pod.spec.node_name and stamps.scheduled is None:
                stamps.scheduled, stamps.node = now, pod.spec.node_name
            for each in pod.status.container_statuses or []:
                if each.state.running and stamps.running is None:
                    stamps.running = now
                ended = each.state.terminated
                if ended and stamps.terminated is None:
                    stamps.terminated = now
                    if ended.started_at and ended.finished_at:
                        stamps.workload_s = (ended.finished_at - ended.started_at).total_seconds()

    def sweep_seen(self, body: dict[str, Any]) -> None:
        if body["metadata"]["name"] != self.sweep:
            return
        self.sweep_created = self.sweep_created or time.time()
        status = body.get("status") or {}
        with self.lock:
            for row in status.get("cells") or []:
                if row.get("experiment") and row.get("nodeKind"):
                    self.cell(str(row["experiment"])).node_kind = str(row["nodeKind"])
        if status.get("phase") in ("Done", "Invalid"):
            self.done.set()


def follow(lister: Callable[..., Any], args: tuple[Any, ...], seen: Callable[[Any], None],
           stop: threading.Event, **selector: str) -> None:  # fmt: skip
    while not stop.is_set():
        stream = watch.Watch()
        try:
            for event in stream.stream(lister, *args, timeout_seconds=30, **selector):
                seen(event["object"])
                if stop.is_set():
                    return
        except Exception as exc:  # a dropped watch: list and watch again
            print(f"watch: {exc.__class__.__name__}: {str(exc).splitlines()[0]}", flush=True)
            time.sleep(1)


def gaps(cells: list[Stamps], zero: float) -> list[dict[str, Any]]:
    """Per cell the seconds between its steps; ``turn`` is from the last cell of its node kind
    that reached its final status before this experiment was created (or from the sweep's
    creation) to that creation: how long the sweep took to hand the freed place on."""

    def span(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(b - a, 1)

    rows = []
    for stamps in sorted(cells, key=lambda s: s.created or 0.0):
        finals = [
            c.final for c in cells
            if c.node_kind == stamps.node_kind and c.final is not None and stamps.created
            and c.final <= stamps.created
        ]  # fmt: skip
        before = max(finals, default=zero)
        rows.append({
            "cell": stamps.experiment, "kind": stamps.node_kind, "node": stamps.node,
            "at": span(zero, stamps.created), "turn": span(before, stamps.created),
            "to pod": span(stamps.created, stamps.pod_created),
            "schedule": span(stamps.pod_created, stamps.scheduled),
            "start": span(stamps.scheduled, stamps.running),
            "run": span(stamps.running, stamps.terminated),
            "kubelet run": stamps.workload_s,
            "status": span(stamps.terminated, stamps.final),
            "total": span(stamps.created, stamps.final), "outcome": stamps.outcome,
        })  # fmt: skip
    return rows


def show(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no cells seen")
        return
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join("-" if row[k] is None else str(row[k]) for k in keys))
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        sums = {k: round(sum(r[k] or 0 for r in mine), 1) for k in
                ("turn", "to pod", "schedule", "start", "run", "status")}  # fmt: skip
        medians = {k: statistics.median([r[k] for r in mine if r[k] is not None] or [0])
                   for k in sums}  # fmt: skip
        print(f"{kind}: {len(mine)} cells; sums {sums}; medians {medians}")


def interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, interrupt)  # stopped by a script: print what was seen
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--sweep", default="oomlab-report")
    parser.add_argument("--out", default="")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    api = project_cluster()
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    timeline, stop = Timeline(args.namespace, args.sweep), threading.Event()
    ns = args.namespace
    watches = [
        (custom.list_namespaced_custom_object, (GROUP, VERSION, ns, SWEEP_PLURAL),
         timeline.sweep_seen, {}),
        (custom.list_namespaced_custom_object, (GROUP, VERSION, ns, PLURAL), timeline.experiment,
         {"label_selector": f"{SWEEP_LABEL}={args.sweep}"}),
        (core.list_namespaced_pod, (ns,), timeline.pod,
         {"label_selector": f"{LABEL_NAME}={POD_APP}"}),
    ]  # fmt: skip
    for lister, largs, seen, selector in watches:
        threading.Thread(target=follow, args=(lister, largs, seen, stop), kwargs=selector,
                         daemon=True).start()  # fmt: skip
    started = time.time()
    try:
        timeline.done.wait(args.timeout)
        time.sleep(2)  # the last events
    except KeyboardInterrupt:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stop.set()
    with timeline.lock:
        cells = list(timeline.cells.values())
    rows = gaps(cells, timeline.sweep_created or started)
    show(rows)
    if args.out:
        kept = {"sweep_created": timeline.sweep_created, "watch_started": started,
                "cells": [asdict(c) for c in cells], "rows": rows}  # fmt: skip
        with open(args.out, "w") as out:
            json.dump(kept, out, indent=1)


if __name__ == "__main__":
    main()
