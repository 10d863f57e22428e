"""Node memory pressure (issue 17) on the local cluster: a Burstable pod with no memory limit on
each kind of node, and an eviction-order case with a BestEffort bystander.

The VM node (LimitedSwap, labelled oomlab.dev/node-pressure=allowed) is filled for real; the host
node (NoSwap) is this machine, so there the case is that the experiment is refused as Invalid.
Every case that fills the VM node waits for it to be Ready without MemoryPressure afterwards and
fails if it is not. Sizes: the VM has 1536 MiB (capacity 1461 MiB), 2 GiB swap, evictionHard
memory.available 100Mi, and its kernel starts swapping at memory.available ~180 MiB (its
oomlab.dev/reclaim-memory-available label), above that threshold: as it stands, swap carries a
fill and the kubelet sees no pressure. The eviction cases raise the threshold to 250Mi, above
the reclaim point, for their duration (eviction_switch.py).

The VM cases are marked node_pressure: `make test-pressure` runs them, `make test-e2e` does not
(each takes the VM node for minutes; see README "Node memory pressure").
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import Namespace, experiment
from eviction_switch import STANDING, eviction_threshold
from kubernetes import client

NODE_PRESSURE_LABEL = "oomlab.dev/node-pressure"
RECOVERY_S = 420.0  # MemoryPressure stays 5 min (evictionPressureTransitionPeriod)
FILL_TIMEOUT_S = 900.0
ABOVE_RECLAIM = "250Mi"


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
        "resources": {"requests": {"memory": "400Mi"}},
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
    return pressure


def test_host_node_refuses_a_node_scale_experiment(ns: Namespace) -> None:
    spec = node_spec(swapBehavior="NoSwap", nodePressure={"fill": "50%"})
    ns.apply(experiment("host-fill", spec))
    status = ns.wait_for("host-fill", lambda s: s.get("phase") == "Invalid", timeout=60)
    assert NODE_PRESSURE_LABEL in status["message"]
    assert "never on the host's own node" in status["message"]
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "NodePressureNotAllowed")
    assert ns.pods_of("host-fill") == []


@pytest.fixture
def threshold_above_reclaim(api: client.ApiClient, pressure_node: str) -> Iterator[str]:
    with eviction_threshold(client.CoreV1Api(api), pressure_node, ABOVE_RECLAIM):
        yield pressure_node


@pytest.mark.node_pressure
@pytest.mark.parametrize(
    ("threshold", "outcome"), [(STANDING, "CompletedInSwap"), (ABOVE_RECLAIM, "Evicted")]
)
def test_burstable_without_limit(
    api: client.ApiClient, ns: Namespace, pressure_node: str, threshold: str, outcome: str
) -> None:
    # 100Mi: the kernel swaps from memory.available ~180 MiB, the kubelet evicts below 100Mi,
    # so the overflow past the reclaim point goes to the 561 MiB swap share and nobody is
    # evicted. 250Mi: the kubelet sees pressure before the kernel swaps: evicted, swap free.
    switched = threshold != STANDING
    with (
        eviction_threshold(client.CoreV1Api(api), pressure_node, threshold)
        if switched
        else contextlib.nullcontext()
    ):
        ns.apply(experiment("vm-fill", node_spec()))
        pressure = node_pressure_status(ns, "vm-fill")
    predicted, observed = pressure["predicted"], pressure["observed"]
    assert predicted["outcome"] == observed["outcome"] == outcome, pressure
    assert pressure["thresholds"]["reclaimPoint"] == "180Mi"
    assert pressure["nodeReadyAfter"] is True
    phases = [p.status.phase for p in ns.pods_of("vm-fill")]
    if not switched:
        assert "above the kubelet's 100 MiB threshold" in predicted["explanation"]
        assert observed["workloadSwapPeakBytes"] > 0
        assert phases == ["Succeeded"]
        return
    assert "none of it used" in predicted["explanation"]
    assert "does not count swap" in predicted["explanation"]
    assert observed["signal"] == "memory.available"
    assert observed["thresholdBytes"] == 250 * 2**20
    assert observed["memoryAvailableBytes"] < observed["thresholdBytes"]
    assert observed["nodeAtEnd"]["nodeSwapFreeBytes"] > 0, "evicted with swap still free"
    assert pressure["memoryPressure"]["since"] is not None
    assert phases == ["Failed"]


@pytest.mark.node_pressure
def test_a_best_effort_bystander_is_evicted_first(
    ns: Namespace, threshold_above_reclaim: str
) -> None:
    spec = node_spec(
        workload={
            "mode": "leak",
            "size": "900Mi",
            "step": "10Mi",
            "interval": 0.5,
            "hold": 30,
            "imagePullPolicy": "Never",
        },
        resources={"requests": {"memory": "600Mi"}},
        nodePressure={"fill": "900Mi", "bystanders": [{"qos": "BestEffort", "size": "300Mi"}]},
    )
    ns.apply(experiment("vm-order", spec))
    pressure = node_pressure_status(ns, "vm-order")
    bystander = pressure["predicted"]["evictionOrder"][0]
    assert bystander.startswith("oomx-by0-"), pressure["predicted"]
    assert pressure["predicted"]["evictedFirst"] == [bystander]
    assert pressure["evictionOrder"] == [bystander], pressure
    assert pressure["predicted"]["outcome"] == pressure["observed"]["outcome"], pressure
    assert pressure["nodeReadyAfter"] is True
    running = [p.metadata.name for p in ns.pods_of("vm-order") if p.status.phase == "Running"]
    assert running == [], "every pod the experiment made has ended"
