"""Sweep: --cells small experiments as one OOMSweep against the same experiments applied directly,
then the operator's memory after --churn experiments created and deleted, on the cluster in
KUBECONFIG (issue 19's speed goals).

1. Direct: the sweep's own cell documents (from the same rules the operator uses), created at once
   with no owner; timed until the last one's status is terminal.
2. Sweep: one OOMSweep with those cells (maxRunningPerNodeKind --max-running); timed until its
   status says Done. Checked: every cell's experiment exists once and the sweep counted them all.
3. The ratio sweep / direct (goal <= 1.2), the operator's RSS (its /proc, and the
   process_resident_memory_bytes it serves) before, after the sides and after the churn:
   --churn experiments in batches of --batch, each batch created, run to the end and deleted
   (goal: under 150 MiB after 1,000).

Each side runs in a namespace of its own, deleted before the next starts.

    python bench/sweep_bench.py [--cells 100] [--max-running 50] [--churn 1000] [--batch 100]
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

from kubernetes import client

from _lab import kubectl, operator_rss_bytes, start_operator_bench, wait_for
from oomlab.experiment import GROUP, PLURAL, VERSION
from oomlab.rules.sweep import SWEEP_LABEL
from oomlab.sweep import SWEEP_PLURAL, plan, sweep_document

MiB = 2**20
RATIO_GOAL = 1.2
RSS_GOAL_MIB = 150
TERMINAL = {"Completed", "OOMKilled", "Failed", "TimedOut", "Invalid"}


def sweep_body(name: str, cells: int, max_running: int) -> dict[str, Any]:
    """At least ``cells`` small experiments (a whole grid: 9 sizes, 4..12Mi, times as many limits
    from 48Mi up as it takes; 100 gives 108); all complete."""
    sizes = [f"{4 + i % 9}Mi" for i in range(min(cells, 9))]
    limits = [f"{48 + 8 * i}Mi" for i in range(max(1, -(-cells // len(sizes))))]
    return sweep_document(
        name,
        template={
            "workload": {"mode": "bulk", "chunk": "4Mi", "imagePullPolicy": "Never"},
            "resources": {"limits": {"memory": "48Mi"}},
            "timeoutSeconds": 600,
        },
        axes={"limits": limits, "sizes": sizes},
        max_running=max_running,
    )


def namespace(core: client.CoreV1Api, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"oomlab.dev/test": "bench"}}})
    return name


def drop_namespace(name: str) -> None:
    kubectl("delete", "namespace", name, "--wait=true", timeout=900)


def phases(custom: client.CustomObjectsApi, ns: str) -> dict[str, str]:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    return {i["metadata"]["name"]: (i.get("status") or {}).get("phase", "") for i in items}


def run_direct(api: client.ApiClient, body: dict[str, Any], timeout: float) -> float:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = namespace(core, "bench-direct")
    try:
        documents = plan({**body, "metadata": {**body["metadata"], "namespace": ns}}).documents
        start = time.monotonic()
        for document in documents.values():
            # no sweep labels: these are nobody's cells
            document["metadata"].pop("labels", None)
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, document)
        wait_for(
            lambda: (
                len(p := phases(custom, ns)) == len(documents)
                and all(v in TERMINAL for v in p.values())
            ),
            timeout,
            "every direct experiment to finish",
        )
        return time.monotonic() - start
    finally:
        drop_namespace(ns)


def run_sweep(api: client.ApiClient, body: dict[str, Any], timeout: float) -> tuple[float, int]:
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = namespace(core, "bench-sweep")
    name = body["metadata"]["name"]
    try:
        start = time.monotonic()
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, SWEEP_PLURAL, body)

        def done() -> dict[str, Any] | None:
            found = custom.get_namespaced_custom_object(GROUP, VERSION, ns, SWEEP_PLURAL, name)
            status = found.get("status") or {}
            return status if status.get("phase") == "Done" else None

        status: dict[str, Any] = wait_for(done, timeout, "the sweep to be Done")
        elapsed = time.monotonic() - start
        made = custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, label_selector=f"{SWEEP_LABEL}={name}"
        )["items"]
        if len(made) != status["total"] or status["finished"] != status["total"]:
            raise SystemExit(f"sweep: {len(made)} experiments for {status['total']} cells")
        return elapsed, int(status["total"])
    finally:
        drop_namespace(ns)


def churn(api: client.ApiClient, total: int, batch: int, timeout: float) -> None:
    """``total`` experiments created, finished and deleted, ``batch`` at a time."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = namespace(core, "bench-churn")
    try:
        for start in range(0, total, batch):
            count = min(batch, total - start)
            body = sweep_body("churn", count, 50)
            documents = list(
                plan({**body, "metadata": {"name": "churn", "namespace": ns}}).documents.values()
            )[:count]
            for index, document in enumerate(documents):
                document["metadata"]["name"] = f"churn-{start + index:05d}"
                document["metadata"].pop("labels", None)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--max-running", type=int, default=50)
    parser.add_argument("--churn", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=3600)
    args, api = start_operator_bench(parser)
    before = rss_mib()
    body = sweep_body("bench", args.cells, args.max_running)
    direct = run_direct(api, body, args.timeout)
    swept, cells = run_sweep(api, body, args.timeout)
    after_sides = rss_mib()
    ratio = swept / direct
    print(f"cells: {cells}; direct {direct:.1f} s, sweep {swept:.1f} s: ratio {ratio:.2f}x "
          f"(goal <= {RATIO_GOAL}x)", flush=True)  # fmt: skip
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
