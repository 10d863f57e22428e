"""Node memory pressure (issue 17) on the local cluster: a Burstable pod with no memory limit on
each kind of node, and an eviction-order case with a BestEffort bystander.

The VM node (LimitedSwap, labelled oomlab.dev/node-pressure=allowed) is filled for real; the host
node (NoSwap) is this machine, so there the case is that the experiment is refused as Invalid.
Every case that fills the VM node waits for it to be Ready without MemoryPressure afterwards and
fails if it is not. Sizes: the VM has 1536 MiB (capacity 1461 MiB), 2 GiB swap, evictionHard
memory.available 100Mi.

The VM cases are marked node_pressure: `make test-pressure` runs them, `make test-e2e` does not
(each takes the VM node for 5-12 minutes, and the fill case's prediction missed once live; see
README "Node memory pressure").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from cluster import Namespace, experiment
from kubernetes import client

NODE_PRESSURE_LABEL = "oomlab.dev/node-pressure"
RECOVERY_S = 420.0  # MemoryPressure stays 5 min (evictionPressureTransitionPeriod)
FILL_TIMEOUT_S = 900.0


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
            "step": "20Mi",
            "interval": 0.5,
            "hold": 60,
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


@pytest.mark.node_pressure
def test_burstable_without_limit_is_evicted_with_swap_free(
    ns: Namespace, pressure_node: str
) -> None:
    # Live on 2026-12-03 a 1300Mi fill completed: the guest's kernel began swapping while
    # memory.available was still ~160 MiB (above the 100Mi threshold), so its 561 MiB swap share
    # held the overflow (103 MiB) and the kubelet saw no pressure. 1900Mi outgrows the share.
    workload = {"mode": "leak", "size": "1900Mi", "step": "10Mi", "interval": 0.5, "hold": 60,
                "imagePullPolicy": "Never"}  # fmt: skip
    ns.apply(experiment("vm-fill", node_spec(workload=workload, nodePressure={"fill": "1900Mi"})))
    pressure = node_pressure_status(ns, "vm-fill")
    predicted, observed = pressure["predicted"], pressure["observed"]
    assert predicted["outcome"] == observed["outcome"] == "Evicted", pressure
    assert "does not count swap" in predicted["explanation"]
    assert observed["signal"] == "memory.available"
    assert observed["memoryAvailableBytes"] < observed["thresholdBytes"]
    assert observed["nodeAtEnd"]["nodeSwapFreeBytes"] > 0, "evicted with swap still free"
    assert pressure["memoryPressure"]["since"] is not None
    assert pressure["nodeReadyAfter"] is True
    assert [p.status.phase for p in ns.pods_of("vm-fill")] == ["Failed"]


@pytest.mark.node_pressure
def test_a_best_effort_bystander_is_evicted_first(ns: Namespace, pressure_node: str) -> None:
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
    assert pressure["evictionOrder"][:1] == [bystander], pressure
    assert pressure["predicted"]["outcome"] == pressure["observed"]["outcome"], pressure
    assert pressure["nodeReadyAfter"] is True
    running = [p.metadata.name for p in ns.pods_of("vm-order") if p.status.phase == "Running"]
    assert running == [], "every pod the experiment made has ended"
