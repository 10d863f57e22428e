"""Sweep: --cells small experiments on the NoSwap host node and --vm-cells on the LimitedSwap VM
node as one OOMSweep, against the same experiments applied directly, then the operator's memory
after --churn experiments created and deleted, on the cluster in KUBECONFIG (issue 19's speed
goals). The cells are built in sweep_cells.py (one sweep variant per cell).

1. Direct: the sweep's own cell documents (from the same rules the operator uses), created at once
   with no owner; timed until the last one's status is terminal, and per node kind.
2. Sweep: one OOMSweep with those cells (maxRunningPerNodeKind --max-running, one number for
   each node kind: with the defaults every VM cell is created at once, on both sides alike);
   timed until its status says Done, and per node kind. Checked: every cell's experiment exists
   once and the sweep counted them all.
3. Per node kind its cells and times on both sides, the ratio sweep / direct (goal <= 1.2), the
   operator's RSS (its /proc, and the process_resident_memory_bytes it serves) before, after the
   sides and after the churn: --churn experiments (host node only) in batches of --batch, each
   batch created, run to the end and deleted (goal: under 150 MiB after 1,000).

Each side runs in a namespace of its own, deleted before the next starts.

    python bench/sweep_bench.py [--cells 100] [--vm-cells 8] [--max-running 50] [--churn 1000]
        [--batch 100]
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from _lab import kubectl, operator_rss_bytes, start_operator_bench, wait_for
from oomlab.experiment import GROUP, PLURAL, VERSION
from oomlab.rules.sweep import SWEEP_LABEL
from oomlab.sweep import SWEEP_PLURAL, plan
from sweep_cells import TERMINAL, direct_documents, finished_kinds, node_kinds, sweep_body

MiB = 2**20
RATIO_GOAL = 1.2
RSS_GOAL_MIB = 150


@dataclass(frozen=True)
class Side:
    seconds: float
    """From the first create to the last cell finished (the sweep: to its status Done)."""
    by_kind: dict[str, float]
    """From the first create to each node kind's last cell finished."""


def namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"oomlab.dev/test": "bench"}}})
    return name


def drop_namespace(name: str) -> None:
    kubectl("delete", "namespace", name, "--wait=true", timeout=900)


def phases(custom: client.CustomObjectsApi, ns: str) -> dict[str, str]:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}


class KindClock:
    """When each node kind's cells had all finished, polled with the phases."""

    def __init__(self, custom: client.CustomObjectsApi, ns: str, kinds: dict[str, str]) -> None:
        self.custom, self.ns, self.kinds = custom, ns, kinds
        self.start = time.monotonic()
        self.seconds: dict[str, float] = {}

    def all_finished(self) -> bool:
        for kind in finished_kinds(self.kinds, phases(self.custom, self.ns)):
            self.seconds.setdefault(kind, time.monotonic() - self.start)
        return len(self.seconds) == len(set(self.kinds.values()))


def run_direct(api: client.ApiClient, body: dict[str, Any], timeout: float) -> Side:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = namespace(core, "bench-direct")
    try:
        documents = direct_documents(body, ns)
        clock = KindClock(custom, ns, node_kinds(body))
        for document in documents:
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, document)
        wait_for(clock.all_finished, timeout, "every direct experiment to finish")
        return Side(time.monotonic() - clock.start, clock.seconds)
    finally:
        drop_namespace(ns)


def run_sweep(api: client.ApiClient, body: dict[str, Any], timeout: float) -> Side:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = namespace(core, "bench-sweep")
    name = body["metadata"]["name"]
    try:
        clock = KindClock(custom, ns, node_kinds(body))
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, SWEEP_PLURAL, body)

        def done() -> dict[str, Any] | None:
            clock.all_finished()
            found = custom.get_namespaced_custom_object(GROUP, VERSION, ns, SWEEP_PLURAL, name)
            status = found.get("status") or {}
            return status if status.get("phase") == "Done" else None

        status: dict[str, Any] = wait_for(done, timeout, "the sweep to be Done")
        elapsed = time.monotonic() - clock.start
        clock.all_finished()
        made = custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, label_selector=f"{SWEEP_LABEL}={name}"
        )["items"]
        if len(made) != status["total"] or status["finished"] != status["total"]:
            raise SystemExit(f"sweep: {len(made)} experiments for {status['total']} cells")
        return Side(elapsed, clock.seconds)
    finally:
        drop_namespace(ns)


def churn(api: client.ApiClient, total: int, batch: int, timeout: float) -> None:
    """``total`` experiments created, finished and deleted, ``batch`` at a time."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = namespace(core, "bench-churn")
    try:
        for start in range(0, total, batch):
            count = min(batch, total - start)
            body = sweep_body("churn", count, 0, 50)
            documents = direct_documents(body, ns)
            for index, document in enumerate(documents):
                document["metadata"]["name"] = f"churn-{start + index:05d}"
                custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, document)
            wait_for(
                lambda: all(v in TERMINAL for v in phases(custom, ns).values()),
                timeout,
                "the churn batch to finish",
            )
            kubectl("-n", ns, "delete", "oomx", "--all", "--wait=true", timeout=900)
            print(
                f"  churn: {start + count}/{total} created and deleted, RSS {rss_mib():.0f} MiB",
                flush=True,
            )
    finally:
        drop_namespace(ns)


def rss_mib() -> float:
    return operator_rss_bytes() / MiB


def report(direct: Side, swept: Side, kinds: dict[str, str]) -> float:
    """Prints each node kind's cells and times on both sides, and the ratio; returns it."""
    ratio = swept.seconds / direct.seconds
    for kind in sorted(set(kinds.values())):
        count = sum(1 for each in kinds.values() if each == kind)
        print(f"  {kind}: {count} cells; all finished after {direct.by_kind[kind]:.1f} s "
              f"direct, {swept.by_kind[kind]:.1f} s in the sweep", flush=True)  # fmt: skip
    print(f"cells: {len(kinds)}; direct {direct.seconds:.1f} s, sweep {swept.seconds:.1f} s "
          f"(to Done): ratio {ratio:.2f}x (goal <= {RATIO_GOAL}x)", flush=True)  # fmt: skip
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100, help="cells on the NoSwap host node")
    parser.add_argument(
        "--vm-cells", type=int, default=8, help="cells on the LimitedSwap VM node (oomlab-vm)"
    )
    parser.add_argument("--max-running", type=int, default=50)
    parser.add_argument("--churn", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600)
    args, api = start_operator_bench(parser)
    before = rss_mib()
    body = sweep_body("bench", args.cells, args.vm_cells, args.max_running)
    if error := plan(body).error:
        raise SystemExit(f"sweep_bench: {error}")
    direct = run_direct(api, body, args.timeout)
    swept = run_sweep(api, body, args.timeout)
    after_sides = rss_mib()
    ratio = report(direct, swept, node_kinds(body))
    if args.churn:
        churn(api, args.churn, args.batch, args.timeout)
    after = rss_mib()
    print(
        f"operator RSS: {before:.0f} MiB at start, {after_sides:.0f} MiB after the sides, "
        f"{after:.0f} MiB after {args.churn} more created and deleted (goal < {RSS_GOAL_MIB})",
        flush=True,
    )
    if ratio > RATIO_GOAL or after > RSS_GOAL_MIB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
