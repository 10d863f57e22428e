"""Operator benchmarks on the cluster in KUBECONFIG (``make cluster-up`` gives a local one).

1. Status latency: for each experiment, the time from the pod's container being seen terminated
   to the experiment's status reaching a terminal phase, both seen by one watcher in this process
   (same clock, same API server). p50 and p95 over --count experiments, --batch at a time.
2. Apply -> final status through the operator vs a bare pod of the same spec created with kubectl,
   each timed by ``kubectl wait``, interleaved, median ratio.
3. Operator RSS (VmRSS of the kopf process, read in its container) after all of the above (at
   least 30 experiments).

Goals: latency p50 < 1 s; apply -> final within 1.3x of the bare pod; RSS < 150 MiB.

    python bench/operator_bench.py [--count 24] [--batch 4] [--pairs 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from kubernetes import client

from _lab import (
    Watcher,
    bare_pod,
    experiment,
    kubectl,
    operator_rss_bytes,
    small_spec,
    start_operator_bench,
    wait_for,
)
from oomlab.experiment import GROUP, PLURAL, VERSION


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def round_trip(namespace: str, document: Path, target: str, phase: str) -> float:
    """Seconds from ``kubectl apply`` to ``kubectl wait`` seeing ``status.phase == phase``."""
    started = time.monotonic()
    kubectl("apply", "-n", namespace, "-f", str(document), timeout=600)
    kubectl("wait", "-n", namespace, target, f"--for=jsonpath={{.status.phase}}={phase}",
            "--timeout=300s", timeout=600)  # fmt: skip
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=6)
    args, api = start_operator_bench(parser)
    namespace = f"oomlab-bench-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    custom = client.CustomObjectsApi(api)
    try:
        watcher = Watcher(api, namespace)
        names = [f"lat-{i:02d}" for i in range(args.count)]
        for start in range(0, len(names), args.batch):
            batch = names[start : start + args.batch]
            for name in batch:
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, experiment(name, small_spec())
                )
            wait_for(lambda done=batch: all(n in watcher.final for n in done), 300,
                     f"experiments {batch} to be terminal")  # fmt: skip
        watcher.stop()
        latencies = [watcher.final[n] - watcher.terminated[n] for n in names
                     if n in watcher.final and n in watcher.terminated]  # fmt: skip
        print(f"status latency over {len(latencies)} experiments: "
              f"p50 {statistics.median(latencies):.3f}s, p95 {percentile(latencies, 0.95):.3f}s "
              f"(goal p50 < 1s)")  # fmt: skip

        operator_times, pod_times = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.pairs):
                exp_name, pod_doc = f"pair-{i:02d}", Path(tmp) / f"pod-{i}.json"
                spec = small_spec()
                pod = bare_pod(f"bare-{i:02d}", namespace, spec)
                pod_doc.write_text(json.dumps(pod))
                exp_doc = Path(tmp) / f"exp-{i}.json"
                exp_doc.write_text(json.dumps(experiment(exp_name, spec)))
                sides = ["operator", "pod"] if i % 2 == 0 else ["pod", "operator"]
                for side in sides:
                    if side == "operator":
                        target = f"oomexperiments/{exp_name}"
                        operator_times.append(round_trip(namespace, exp_doc, target, "Completed"))
                    else:
                        target = f"pod/{pod['metadata']['name']}"
                        pod_times.append(round_trip(namespace, pod_doc, target, "Succeeded"))
        operator_median = statistics.median(operator_times)
        pod_median = statistics.median(pod_times)
        ratio = operator_median / pod_median
        print(
            f"apply -> final status: operator {operator_median:.2f}s, bare pod "
            f"{pod_median:.2f}s, ratio {ratio:.2f}x (goal <= 1.3x)"
        )

        rss = operator_rss_bytes() / 2**20
        total = args.count + args.pairs
        print(f"operator RSS after {total} experiments: {rss:.1f} MiB (goal < 150 MiB)")
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
