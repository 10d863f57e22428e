"""status.kubernetes.memoryQoS: predicted memory.min/low/high from the node's kubelet version and
labels, observed from memhog's cgroup report, and what the explanation says about them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from oomlab.experiment import ExperimentSpec
from oomlab.operator.config import OperatorConfig
from oomlab.operator.kubernetes_view import Observation, PodFacts
from oomlab.operator.status import assemble
from oomlab.rules.classify import Phase
from oomlab.rules.memory_qos import MemoryQoSSettings, ReservationPolicy
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.results import CgroupVersion, Outcome, Progress
from oomlab.rules.semantics import SwapBehavior

MiB = 2**20
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
VM_NODE = NodeFacts(
    "oomlab-vm", 1_531_936_768, 2_147_479_552, SwapBehavior.LIMITED_SWAP, CgroupVersion.V2,
    "madvise", kubelet_version="v1.37.2", memory_allocatable_bytes=1_531_936_768 - 100 * MiB,
)  # fmt: skip
TIERED_09 = MemoryQoSSettings(True, ReservationPolicy.TIERED, 0.9)
SEED: dict[str, Any] = {
    "swapBehavior": "LimitedSwap",
    "workload": {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi"},
    "resources": {"requests": {"memory": "400Mi"}, "limits": {"memory": "500Mi"}},
}


def body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "oomlab.dev/v1alpha1",
        "kind": "OOMExperiment",
        "metadata": {"name": "seed", "namespace": "lab", "uid": "u", "generation": 1},
        "spec": SEED,
    }
    if status is not None:
        doc["status"] = status
    return doc


def completed(min_: int, low: int, high: int | None) -> Observation:
    cgroup = {
        "version": 2, "memory_limit_bytes": 500 * MiB, "swap_limit_bytes": 587_960_320,
        "memory_min_bytes": min_, "memory_low_bytes": low, "memory_high_bytes": high,
    }  # fmt: skip
    return Observation(
        phase=Phase.COMPLETED,
        outcome=Outcome.COMPLETED,
        exit_code=0,
        progress=Progress(allocated_bytes=1000 * MiB, lines=22, cgroup=cgroup),
        pod=PodFacts(name="oomx-seed", node_name="oomlab-vm", qos_class="Burstable"),
    )


def status_on(node: NodeFacts, observation: Observation | None) -> dict[str, Any]:
    spec = ExperimentSpec.from_spec(SEED)
    return assemble(body(), spec, OperatorConfig(), NOW, observation=observation, node=node)


def test_defaults_of_1_37_predict_and_observe_nothing_that_acts() -> None:
    status = status_on(VM_NODE, completed(0, 0, None))
    qos = status["kubernetes"]["memoryQoS"]
    assert qos["enabled"] is True and qos["reservationPolicy"] == "None"
    assert "throttlingFactor" not in qos
    assert qos["predicted"] == qos["observed"] == {"memoryMin": 0, "memoryLow": 0, "memoryHigh": -1}
    assert qos["agrees"] is True
    assert "v1.37.2's defaults" in qos["source"]
    assert "writes nothing that acts" in qos["explanation"]
    assert "Memory QoS" not in status["kubernetes"]["explanation"]


def test_tiered_with_a_factor_throttles_the_seed_and_says_so() -> None:
    node = replace(VM_NODE, memory_qos=TIERED_09)
    status = status_on(node, completed(0, 400 * MiB, 490 * MiB))
    k8s = status["kubernetes"]
    qos = k8s["memoryQoS"]
    assert qos["predicted"] == {"memoryMin": 0, "memoryLow": 400 * MiB, "memoryHigh": 490 * MiB}
    assert qos["agrees"] is True and qos["throttlingFactor"] == "0.9"
    assert "passes memory.high 490 MiB" in k8s["explanation"]
    assert "outcome is still decided by limit + swap" in k8s["explanation"]


def test_a_cgroup_that_disagrees_is_named() -> None:
    node = replace(VM_NODE, memory_qos=TIERED_09)
    status = status_on(node, completed(0, 0, None))
    qos = status["kubernetes"]["memoryQoS"]
    assert qos["agrees"] is False
    assert "memory.low reads 0 (0 B), predicted 419430400 (400 MiB)" in qos["explanation"]
    assert "disagrees" in status["kubernetes"]["explanation"]


def test_a_later_event_keeps_what_the_workload_read() -> None:
    node = replace(VM_NODE, memory_qos=TIERED_09)
    first = status_on(node, completed(0, 400 * MiB, 490 * MiB))
    spec = ExperimentSpec.from_spec(SEED)
    again = assemble(body(first), spec, OperatorConfig(), NOW, node=node)
    assert again["kubernetes"]["memoryQoS"] == first["kubernetes"]["memoryQoS"]
    assert again["kubernetes"]["explanation"].count("passes memory.high") == 1


def test_1_34_and_unread_versions() -> None:
    old = status_on(replace(VM_NODE, kubelet_version="v1.34.4"), completed(0, 0, None))
    assert old["kubernetes"]["memoryQoS"]["enabled"] is False
    assert old["kubernetes"]["memoryQoS"]["agrees"] is True
    unread = status_on(replace(VM_NODE, kubelet_version="v1.36.3"), completed(0, 0, None))
    qos = unread["kubernetes"]["memoryQoS"]
    assert "not predicted for kubelet v1.36.3" in qos["explanation"]
    assert qos["observed"]["memoryHigh"] == -1 and "predicted" not in qos


def test_no_section_on_cgroup_v1_or_before_anything_is_known() -> None:
    host = NodeFacts("oomlab-node", 24 * 2**30, 0, SwapBehavior.NO_SWAP, CgroupVersion.V1)
    assert "memoryQoS" not in status_on(host, None)["kubernetes"]
    spec = ExperimentSpec.from_spec(SEED)
    pending = assemble(body(), spec, OperatorConfig(), NOW)
    assert "memoryQoS" not in pending["kubernetes"]
