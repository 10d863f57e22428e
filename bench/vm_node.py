"""The LimitedSwap VM node (``hack/vm-node.sh``) against the host's NoSwap node.

1. VM start -> node Ready: the times ``hack/vm-node.sh up`` logs (qemu start to Ready), with the
   accelerator it used (TCG on machines without usable KVM: everything in the guest is emulated).
2. ``kubectl apply`` -> final status of the seed (bulk 1000Mi, Burstable 400Mi/500Mi) on the v2
   node (LimitedSwap: it completes on swap) vs the v1 node (NoSwap: it is OOM-killed), interleaved,
   median ratio. The two outcomes differ on purpose: this is what the same experiment costs on
   each node.
3. Status latency on the v2 node: the pod's container seen terminated -> the experiment's status
   terminal, one watcher, one clock.

    python bench/vm_node.py [--pairs 3]      (needs make cluster-up with the VM node Ready)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client

from _lab import Watcher, deploy_operator, experiment, kubectl, project_cluster, wait_for
from oomlab.rules.nodes import SWAP_BEHAVIOR_LABEL
from operator_bench import percentile

STATE = Path(os.environ.get("OOMLAB_STATE", "/var/lib/oomlab"))
TIMES_LOG = STATE / "vm-node-times.tsv"


def seed_spec(swap_behavior: str) -> dict[str, Any]:
    return {
        "workload": {"mode": "bulk", "size": "1000Mi", "imagePullPolicy": "Never"},
        "resources": {"requests": {"memory": "400Mi"}, "limits": {"memory": "500Mi"}},
        "swapBehavior": swap_behavior,
        "timeoutSeconds": 600,
    }


def vm_start_times() -> list[tuple[float, str]]:
    """(seconds from qemu start to Ready, accelerator) per logged ``vm-node.sh up``."""
    if not TIMES_LOG.is_file():
        return []
    rows = []
    for line in TIMES_LOG.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1].isdigit():
            rows.append((float(fields[1]), fields[2]))
    return rows


def node_with(api: client.ApiClient, behavior: str) -> str | None:
    nodes = client.CoreV1Api(api).list_node(label_selector=f"{SWAP_BEHAVIOR_LABEL}={behavior}")
    ready = [
        n.metadata.name
        for n in nodes.items
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    ]
    return ready[0] if ready else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    api = project_cluster()
    v2, v1 = node_with(api, "LimitedSwap"), node_with(api, "NoSwap")
    if v2 is None or v1 is None:
        raise SystemExit(f"needs a Ready LimitedSwap node and a NoSwap node (have {v2}, {v1}): "
                         "make cluster-up")  # fmt: skip

    starts = vm_start_times()
    if starts:
        recent = [seconds for seconds, _ in starts[-5:]]
        print(f"VM start -> node Ready, last {len(recent)} ups: median "
              f"{statistics.median(recent):.0f} s, range {min(recent):.0f}-{max(recent):.0f} s "
              f"(qemu {starts[-1][1]})")  # fmt: skip
    else:
        print(f"VM start -> node Ready: no times logged in {TIMES_LOG}")

    deploy_operator()
    namespace = f"oomlab-bench-vm-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    try:
        watcher = Watcher(api, namespace)
        took: dict[str, list[float]] = {"LimitedSwap": [], "NoSwap": []}
        outcome: dict[str, set[str]] = {"LimitedSwap": set(), "NoSwap": set()}
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.pairs):
                order = ["LimitedSwap", "NoSwap"] if i % 2 == 0 else ["NoSwap", "LimitedSwap"]
                for behavior in order:
                    name = f"seed-{behavior.lower()}-{i}"
                    document = Path(tmp) / f"{name}.json"
                    document.write_text(json.dumps(experiment(name, seed_spec(behavior))))
                    started = time.monotonic()
                    kubectl("apply", "-n", namespace, "-f", str(document))
                    wait_for(lambda n=name: n in watcher.final, 900, f"{name} to be terminal")
                    took[behavior].append(watcher.final[name] - started)
                    outcome[behavior].add(watcher.phase[name])
        watcher.stop()
        v2_median, v1_median = (
            statistics.median(took["LimitedSwap"]),
            statistics.median(took["NoSwap"]),
        )
        print(f"apply -> final, seed 400Mi/500Mi bulk 1000Mi, median of {args.pairs}: "
              f"v2 LimitedSwap ({v2}) {v2_median:.1f} s {sorted(outcome['LimitedSwap'])}, "
              f"v1 NoSwap ({v1}) {v1_median:.1f} s {sorted(outcome['NoSwap'])}: "
              f"ratio {v2_median / v1_median:.2f}x")  # fmt: skip
        latencies = [watcher.final[n] - watcher.terminated[n] for n in watcher.final
                     if "limitedswap" in n and n in watcher.terminated]  # fmt: skip
        if latencies:
            p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
            print(f"status latency on the v2 node over {len(latencies)}: "
                  f"p50 {p50:.3f} s, p95 {p95:.3f} s")  # fmt: skip
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


if __name__ == "__main__":
    main()
