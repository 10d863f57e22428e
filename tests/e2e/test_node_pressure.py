"""Node memory pressure (issue 17) on the local cluster: a Burstable pod with no memory limit on
each kind of node, and an eviction-order case with a BestEffort bystander.

The VM node (LimitedSwap, labelled oomlab.dev/node-pressure=allowed) is filled for real; the host
node (NoSwap) is this machine, so there the case is that the experiment is refused as Invalid.
Every case that fills the VM node waits for it to be Ready without MemoryPressure afterwards and
fails if it is not, and checks that every pod the experiment made has ended and goes with it.
Sizes: the VM has 1536 MiB (capacity 1461 MiB), 2 GiB swap, evictionHard memory.available
100Mi, and its kernel starts swapping at memory.available ~180 MiB (its
oomlab.dev/reclaim-memory-available label), above that threshold: as it stands, swap carries a
fill and the kubelet sees no pressure. The eviction case raises the threshold to 250Mi, above
the reclaim point, for its duration (eviction_switch.py).

The VM cases are marked node_pressure: `make test-pressure` runs them; `make test` runs that
after the local cluster's e2e tier, and `make test-e2e` (so kind's e2e, with no LimitedSwap node
on this cgroup v1 host) deselects them. See README "Node memory pressure".
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import Namespace, experiment
from eviction_switch import HELPER, eviction_threshold
from kubernetes import client

from lab import wait_for
from oomlab.operator.pressure_view import ROLE_BYSTANDER
from oomlab.operator.twin import LABEL_ROLE
from oomlab.rules.units import parse_k8s_quantity

MiB = 2**20

NODE_PRESSURE_LABEL = "oomlab.dev/node-pressure"
RECOVERY_S = 420.0  # MemoryPressure stays 5 min (evictionPressureTransitionPeriod)
FILL_TIMEOUT_S = 900.0
CLEANUP_S = 180.0
ABOVE_RECLAIM = "250Mi"
RECLAIM_POINT = 180 * MiB
SWAP_MARGIN = 64 * MiB
"""How far past the reclaim point the standing case's fill must take the node, at least."""


def vm_node_state(api: client.ApiClient, name: str) -> tuple[bool, bool]:
    """(Ready, MemoryPressure) of the node."""
    node = client.CoreV1Api(api).read_node(name)
    conditions = {c.type: c.status for c in node.status.conditions or []}
    return conditions.get("Ready") == "True", conditions.get("MemoryPressure") == "True"


@pytest.fixture
def pressure_node(api: client.ApiClient, limited_swap_node: dict[str, Any]) -> Iterator[str]:
    """The VM node, allowed to be filled; after the test it must be Ready without pressure."""
    name = str(limited_swap_node["metadata"]["name"])
    labels = limited_swap_node["metadata"].get("labels") or {}
    if labels.get(NODE_PRESSURE_LABEL) != "allowed":
        pytest.fail(f"the VM node {name} lacks {NODE_PRESSURE_LABEL}=allowed (hack/vm-node.sh)")
    yield name
    deadline = time.monotonic() + RECOVERY_S
    state = vm_node_state(api, name)
    while state != (True, False) and time.monotonic() < deadline:
        time.sleep(5)
        state = vm_node_state(api, name)
    assert state == (True, False), f"{name} not Ready without MemoryPressure: {state}"
    helpers = client.CoreV1Api(api).list_namespaced_pod(
        "default", field_selector=f"metadata.name={HELPER}"
    )
    assert helpers.items == [], "the eviction switch's helper pod is gone"


def node_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "workload": {
            "mode": "leak",
            "size": "1300Mi",
            "step": "10Mi",
            "interval": 0.5,
            "hold": 30,
            "imagePullPolicy": "Never",
        },
        "resources": {"requests": {"memory": "400Mi"}},  # Burstable, no limit
        "swapBehavior": "LimitedSwap",
        "timeoutSeconds": 600,
        "nodePressure": {"fill": "1300Mi"},
    }
    spec.update(overrides)
    return spec


def node_pressure_status(ns: Namespace, name: str) -> dict[str, Any]:
    """status.nodePressure once the observation is written (after the node recovered)."""
    status = ns.wait_for(
        name,
        lambda s: "observed" in (s.get("nodePressure") or {}),
        timeout=FILL_TIMEOUT_S + RECOVERY_S,
    )
    pressure: dict[str, Any] = status["nodePressure"]
    print(f"{name} status.nodePressure:", json.dumps(pressure, sort_keys=True))  # for the record
    return pressure


def assert_cleaned_up(ns: Namespace, name: str, workload_phase: str) -> None:
    """Every pod the experiment made has ended (its bystanders deleted, the workload's pod in
    ``workload_phase``), and deleting the experiment leaves none of them. The operator writes
    its observation as soon as the container has terminated; the kubelet reports the pod's
    terminal phase a little later, once it has torn the pod down, so this waits for it."""
    uid = ns.get(name)["metadata"]["uid"]  # type: ignore[index]

    def describe() -> str:
        return str([(p["metadata"]["name"], p["status"].get("phase")) for p in ns.pods(uid)])

    def ended() -> bool:
        return all(
            p["status"].get("phase") in ("Succeeded", "Failed")
            and (p["metadata"].get("labels") or {}).get(LABEL_ROLE) != ROLE_BYSTANDER
            for p in ns.pods(uid)
        )

    wait_for(ended, CLEANUP_S, f"{name}'s pods to end and its bystanders to go", describe)
    assert [p["status"]["phase"] for p in ns.pods(uid)] == [workload_phase], describe()
    ns.delete(name)
    wait_for(lambda: ns.pods(uid) == [], CLEANUP_S, f"{name}'s pods to go with it", describe)


def test_host_node_refuses_a_node_scale_experiment(ns: Namespace) -> None:
    spec = node_spec(swapBehavior="NoSwap", nodePressure={"fill": "50%"})
    ns.apply(experiment("host-fill", spec))
    status = ns.wait_for("host-fill", lambda s: s.get("phase") == "Invalid", timeout=60)
    assert NODE_PRESSURE_LABEL in status["message"]
    assert "never on the host's own node" in status["message"]
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "NodePressureNotAllowed")
    assert "nodePressure" not in status, "no prediction, no bystander, no fill"
    assert ns.pods_of("host-fill") == []


@pytest.mark.node_pressure
def test_burstable_without_limit_completes_in_swap(
    api: client.ApiClient, ns: Namespace, pressure_node: str
) -> None:
    # The standing 100Mi: the kernel swaps from memory.available ~180 MiB, the kubelet evicts
    # below 100Mi, so the overflow past the reclaim point goes to the 561 MiB swap share and
    # nobody is evicted.
    ns.apply(experiment("vm-fill", node_spec()))
    pressure = node_pressure_status(ns, "vm-fill")
    predicted, observed = pressure["predicted"], pressure["observed"]
    capacity = parse_k8s_quantity(
        client.CoreV1Api(api).read_node(pressure_node).status.capacity["memory"]
    )
    # The node as the operator read it from the kubelet before the fill (a fresh node holds
    # about 125 MiB): the fill must take it past the reclaim point, or swap is not the question.
    assert pressure["baselineBytes"] > 0, "the kubelet's summary was read"
    past_reclaim = pressure["baselineBytes"] + pressure["fillBytes"] - (capacity - RECLAIM_POINT)
    assert past_reclaim >= SWAP_MARGIN, f"the fill reaches only {past_reclaim} B past reclaim"
    assert predicted["outcome"] == observed["outcome"] == "CompletedInSwap", pressure
    assert pressure["result"] == "Match"
    assert pressure["thresholds"]["reclaimPoint"] == "180Mi"
    assert pressure["thresholds"]["source"] == "configz"
    assert "above the kubelet's 100 MiB threshold" in predicted["explanation"]
    assert observed["workloadSwapPeakBytes"] > 0
    assert observed["nodeAtEnd"]["source"] == "kubelet"
    assert pressure["nodeReadyAfter"] is True
    assert_cleaned_up(ns, "vm-fill", "Succeeded")


@pytest.mark.node_pressure
def test_a_best_effort_bystander_goes_first_then_the_workload_is_evicted_with_swap_free(
    api: client.ApiClient, ns: Namespace, pressure_node: str
) -> None:
    # 250Mi, above the reclaim point: the kubelet sees pressure before the kernel swaps. At the
    # first pressure the BestEffort bystander is further over its (zero) request than the
    # workload over its 600Mi, so it goes first; the workload grows on and is evicted next, with
    # the node's swap free.
    spec = node_spec(
        resources={"requests": {"memory": "600Mi"}},
        nodePressure={"fill": "1300Mi", "bystanders": [{"qos": "BestEffort", "size": "300Mi"}]},
    )
    with eviction_threshold(client.CoreV1Api(api), pressure_node, ABOVE_RECLAIM):
        ns.apply(experiment("vm-evict", spec))
        pressure = node_pressure_status(ns, "vm-evict")
    predicted, observed = pressure["predicted"], pressure["observed"]
    bystander = predicted["evictionOrder"][0]
    assert bystander.startswith("oomx-by0-"), predicted
    assert predicted["evictedFirst"] == [bystander]
    assert pressure["evictionOrder"] == [bystander], pressure
    (record,) = pressure["bystanders"]
    assert (record["pod"], record["qosClass"], record["reason"]) == (
        bystander,
        "BestEffort",
        "Evicted",
    )
    assert predicted["outcome"] == observed["outcome"] == "Evicted", pressure
    assert pressure["result"] == "Match"
    assert record["endedAt"] <= observed["endedAt"], "the bystander went first"
    assert "none of it used" in predicted["explanation"]
    assert "does not count swap" in predicted["explanation"]
    assert pressure["thresholds"]["memoryAvailable"] == ABOVE_RECLAIM
    assert observed["signal"] == "memory.available"
    assert observed["thresholdBytes"] == 250 * MiB
    assert observed["memoryAvailableBytes"] < observed["thresholdBytes"]
    # At the eviction, as the kubelet's own summary said: memory.available and free swap.
    at_end = observed["nodeAtEnd"]
    assert at_end["source"] == "kubelet", at_end
    assert at_end["memoryAvailableBytes"] is not None
    assert at_end["nodeSwapFreeBytes"] > 1024 * MiB, "evicted with most of the swap free"
    assert pressure["memoryPressure"]["since"] is not None
    assert pressure["nodeReadyAfter"] is True
    assert_cleaned_up(ns, "vm-evict", "Failed")
