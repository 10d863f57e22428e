"""status.swapCost for real (spec.measureSwapCost): an experiment that completes by swapping on
the LimitedSwap node is timed against its unconstrained twin on the same node; one that gets no
swap says so and runs no twin.

Sizes, on the VM node (1,531,916,288 B memory, 2,147,479,552 B swap, THP madvise): bulk 300Mi with
one re-access pass, Burstable request 150Mi, limit 200Mi. The swap share is about 210 MiB, so limit
+ swap is about 410 MiB for a ~312 MiB workload (98 MiB to spare); over 100 MiB has to go to swap,
and the re-access pass reads it back, so swap-ins and swap-outs are both non-zero. The twin asks
for 312 + 256 = 568 MiB (Guaranteed: no swap), which the node fits once the experiment's pod has
ended. Under TCG (and 250m of CPU per pod) it took 130 s from apply to the verdict here (7.8x:
73 s of work vs the twin's 9.4 s, 259 MiB swapped in, 370 MiB out); timeouts are about 4x. Times
are printed, never asserted: only that the swapping run was the slower one.
"""

from __future__ import annotations

import re
import time
from typing import Any

from cluster import Namespace, experiment, kubectl, small_spec, with_kubelet_of

from lab import wait_for

COST_TIMEOUT_S = 600
SWAPPING = {
    "swapBehavior": "LimitedSwap",
    "measureSwapCost": True,
    "workload": {"mode": "bulk", "size": "300Mi", "chunk": "100Mi", "reaccess": 1},
    "resources": {"requests": {"memory": "150Mi"}, "limits": {"memory": "200Mi"}},
    "timeoutSeconds": 360,
}


def measured(ns: Namespace, name: str) -> dict[str, Any]:
    """The experiment's status once status.swapCost is Done."""
    return ns.wait_for(
        name, lambda s: (s.get("swapCost") or {}).get("state") == "Done", COST_TIMEOUT_S
    )


def test_swap_cost_of_a_run_that_swapped_on_the_limited_swap_node(
    ns: Namespace, limited_swap_node: dict[str, Any]
) -> None:
    started = time.monotonic()
    created = ns.apply(experiment("swap-cost", with_kubelet_of(SWAPPING, limited_swap_node)))
    assert created["spec"].get("measureSwapCost") is True, (
        "the cluster's CRD dropped spec.measureSwapCost: apply manifests/crd/ from this tree"
    )
    status = measured(ns, "swap-cost")
    cost, k8s = status["swapCost"], status["kubernetes"]
    print(
        f"\nswap-cost: {cost.get('summary')} in {time.monotonic() - started:.0f}s from apply: "
        f"{cost.get('workSeconds')}s vs twin {cost.get('twinWorkSeconds')}s, swap in "
        f"{cost.get('swapInBytes')} B, out {cost.get('swapOutBytes')} B "
        f"({cost.get('swapCountScope')}), major faults {cost.get('majorFaults')}, in swap at end "
        f"{cost.get('swapBytesAtEnd')} B; {cost.get('message')}"
    )
    assert status["phase"] == "Completed", status
    node = limited_swap_node["metadata"]["name"]
    assert k8s["nodeName"] == cost["twinNodeName"] == node
    assert cost["twinOutcome"] == "Completed", cost
    assert cost["verdict"] in ("Cheap", "Costly"), cost
    assert cost["ratio"] > 1, cost
    assert cost["workSeconds"] > cost["twinWorkSeconds"] > 0
    assert cost["swapInBytes"] > 0 and cost["swapOutBytes"] > 0, cost
    assert cost["swapBytesAtEnd"] > 0, cost  # memory.swap.current when the workload finished
    assert re.fullmatch(r"\d+\.\dx", cost["summary"]), cost
    reasons = {e["reason"] for e in ns.wait_event("swap-cost", f"SwapCost{cost['verdict']}")}
    assert "SwapCostTwinStarted" in reasons

    header, row = kubectl("get", "oomx", "swap-cost", "-n", ns.name).stdout.splitlines()[:2]
    # columns are left-aligned under their headers (empty DOCKER and PARITY cells shift split())
    assert row[header.index("SWAP-COST") :].split()[0] == cost["summary"]

    assert len(ns.pods_of("swap-cost")) == 2  # the experiment's pod and its twin
    uid = created["metadata"]["uid"]
    ns.delete("swap-cost")
    wait_for(lambda: ns.pods(uid) == [], 120, "the experiment's pods, twin included, to go")


def test_no_swap_means_no_cost_to_measure_and_no_twin(ns: Namespace) -> None:
    # 16Mi under a 64Mi limit: no swap needed on any node; on a NoSwap node none is given at all
    status = ns.run(experiment("no-swap-cost", small_spec(measureSwapCost=True)), timeout=180)
    assert status["phase"] == "Completed", status
    status = measured(ns, "no-swap-cost")
    cost = status["swapCost"]
    assert (cost["verdict"], cost["summary"]) == ("NoSwapUsed", "no swap"), cost
    assert cost["message"].startswith("No swap used; no cost to measure"), cost
    if status["kubernetes"].get("swapBehavior") == "NoSwap":
        assert "no swap (swap limit 0)" in cost["message"], cost
    assert "ratio" not in cost and "twinPodName" not in cost
    assert len(ns.pods_of("no-swap-cost")) == 1
