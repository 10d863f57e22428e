"""An experiment on a LimitedSwap node: choosing the node (spec.swapBehavior -> pod scheduling),
predicting the swap limit the kernel sets (the node's own capacities, whole pages), checking it
against what the workload read, and the node's THP mode as a caveat of the prediction.

The numbers are the ones measured on the project's VM node (FACTS.md, "A LimitedSwap node in a
TCG guest"): capacity.memory 1,531,936,768 B, swap 2,147,479,552 B, request 400Mi ->
587,960,434 B from the kubelet, 587,960,320 B read back from memory.swap.max.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kube_objects import node_object
from oomlab.experiment import ExperimentSpec, InvalidSpec, build_pod
from oomlab.operator.config import OperatorConfig
from oomlab.operator.kubernetes_view import (
    Observation,
    PodFacts,
    resolve_cgroup_version,
    resolve_swap_behavior,
    swap_limit_check,
)
from oomlab.operator.status import assemble
from oomlab.rules.classify import Phase
from oomlab.rules.nodes import NodeFacts, node_facts_from_node, placement_for
from oomlab.rules.results import CgroupVersion, Outcome, Predicted, Progress
from oomlab.rules.semantics import (
    Allowance,
    Prediction,
    SwapBehavior,
    kernel_limit,
    limited_swap_bytes,
    thp_caveat,
)

MiB = 2**20
GiB = 2**30
NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
VM_MEMORY = 1_531_936_768
VM_SWAP = 2_147_479_552
VM_NODE = NodeFacts(
    "oomlab-vm", VM_MEMORY, VM_SWAP, SwapBehavior.LIMITED_SWAP, CgroupVersion.V2, "madvise"
)
HOST_NODE = NodeFacts("oomlab-node", 24 * GiB, 2 * GiB)
SEED_LIMITED_SWAP: dict[str, Any] = {
    "swapBehavior": "LimitedSwap",
    "workload": {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi"},
    "resources": {"requests": {"memory": "400Mi"}, "limits": {"memory": "500Mi"}},
    "docker": {"memory": "500m", "memorySwap": "1g"},
}
GUARANTEED = {
    **SEED_LIMITED_SWAP,
    "resources": {"requests": {"memory": "500Mi"}, "limits": {"memory": "500Mi"}},
}


# --- the kernel's view of the kubelet's share ---------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "memory", "swap", "kubelet", "kernel"),
    [
        # the VM node (FACTS): observed memory.swap.max 587,960,320
        (400 * MiB, VM_MEMORY, VM_SWAP, 587_960_434, 587_960_320),
        # kind in a 4 GiB guest (FACTS): observed 219,508,736
        (400 * MiB, 4_103_299_072, VM_SWAP, 219_510_737, 219_508_736),
        # a share that is already whole pages stays as it is
        (2 * GiB, 8 * GiB, 4 * GiB, GiB, GiB),
        (0, VM_MEMORY, VM_SWAP, 0, 0),
    ],
)
def test_kernel_reads_the_kubelets_share_back_in_whole_pages(
    request_: int, memory: int, swap: int, kubelet: int, kernel: int
) -> None:
    assert limited_swap_bytes(request_, memory, swap) == kubelet
    assert kernel_limit(kubelet) == kernel


@pytest.mark.parametrize(
    ("predicted", "observed", "agrees", "says"),
    [
        (587_960_320, 587_960_320, True, ""),
        (0, 0, True, ""),
        (587_960_320, 587_960_434, False, "587960434 bytes"),  # not page-rounded: a wrong rule
        (587_960_320, 0, False, "not the predicted 587960320 bytes"),
        (0, -1, False, "no swap limit (max)"),
        (None, 0, None, ""),
        (0, None, None, ""),
    ],
)
def test_swap_limit_check(
    predicted: int | None, observed: int | None, agrees: bool | None, says: str
) -> None:
    result, sentence = swap_limit_check(predicted, observed)
    assert result is agrees
    assert (says in sentence) if says else sentence == ""


# --- THP --------------------------------------------------------------------------------------

NEEDS_SWAP = Prediction(Predicted.COMPLETED, 1012 * MiB, 1060 * MiB, "Kubernetes: fits.")
ALLOWANCE = Allowance(500 * MiB, 560 * MiB, "limit plus swap")


@pytest.mark.parametrize(
    ("prediction", "allowance", "thp", "outcome", "says"),
    [
        (NEEDS_SWAP, ALLOWANCE, "always", Predicted.BORDERLINE, "not a safe prediction"),
        (NEEDS_SWAP, ALLOWANCE, "madvise", Predicted.COMPLETED, "'madvise' on the node"),
        (NEEDS_SWAP, ALLOWANCE, "never", Predicted.COMPLETED, "'never' on the node"),
        (NEEDS_SWAP, ALLOWANCE, None, Predicted.COMPLETED, "hugepage mode is unknown"),
        # an OOM kill predicted with swap counted stays one, with the caveat
        (
            Prediction(Predicted.OOM_KILLED, 2 * GiB, 1060 * MiB, "Kubernetes: too big."),
            ALLOWANCE,
            "always",
            Predicted.OOM_KILLED,
            "'always'",
        ),
    ],
)
def test_thp_mode_qualifies_a_prediction_that_counts_on_swap(
    prediction: Prediction, allowance: Allowance, thp: str | None, outcome: Predicted, says: str
) -> None:
    result = thp_caveat(prediction, allowance, thp)
    assert result.outcome == outcome
    assert says in result.explanation
    assert result.explanation.startswith("Kubernetes:")


@pytest.mark.parametrize(
    ("prediction", "allowance"),
    [
        # no swap given (Guaranteed): THP changes nothing
        (
            Prediction(Predicted.OOM_KILLED, 1012 * MiB, 500 * MiB, "no swap."),
            Allowance(500 * MiB, 0, "none"),
        ),
        # fits in memory alone
        (Prediction(Predicted.COMPLETED, 112 * MiB, 1060 * MiB, "fits."), ALLOWANCE),
    ],
)
def test_thp_does_not_matter_without_swap(prediction: Prediction, allowance: Allowance) -> None:
    assert thp_caveat(prediction, allowance, "always") == prediction


# --- choosing the node ------------------------------------------------------------------------


def test_node_labels_are_node_facts() -> None:
    labels = {
        "oomlab.dev/swap-behavior": "LimitedSwap",
        "oomlab.dev/cgroup-version": "v2",
        "oomlab.dev/thp": "madvise",
    }
    node = node_object("oomlab-vm", labels, memory="1496032Ki", swap=VM_SWAP)
    assert node_facts_from_node(node) == VM_NODE
    node["metadata"]["labels"] = {"oomlab.dev/cgroup-version": "v3", "oomlab.dev/thp": "unknown"}
    facts = node_facts_from_node(node)
    assert (facts.cgroup_version, facts.thp, facts.swap_behavior) == (None, None, None)


def test_limited_swap_asks_for_the_labelled_node_and_tolerates_its_taint() -> None:
    placement = placement_for(SwapBehavior.LIMITED_SWAP)
    assert placement.node_selector == {"oomlab.dev/swap-behavior": "LimitedSwap"}
    assert placement.tolerations == [
        {"key": "oomlab.dev/swap", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert placement.affinity is None


def test_no_swap_keeps_off_limited_swap_nodes_and_accepts_unlabelled_ones() -> None:
    placement = placement_for(SwapBehavior.NO_SWAP)
    terms = placement.affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    # NotIn matches nodes without the label too: an unlabelled kubelet runs NoSwap, its default.
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "oomlab.dev/swap-behavior", "operator": "NotIn", "values": ["LimitedSwap"]}
            ]
        }
    ]
    assert (placement.node_selector, placement.tolerations) == ({}, [])


def test_pod_of_a_limited_swap_experiment() -> None:
    raw = {
        **SEED_LIMITED_SWAP,
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [
            {"key": "oomlab.dev/swap", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "gpu", "operator": "Exists"},
        ],
    }
    pod = build_pod("seed-limited-swap", "lab", "uid-1", ExperimentSpec.from_spec(raw))
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"disk": "ssd", "oomlab.dev/swap-behavior": "LimitedSwap"}
    assert spec["tolerations"] == raw["tolerations"]  # the swap toleration is not doubled
    assert "affinity" not in spec


def test_pod_without_swap_behavior_is_unconstrained() -> None:
    raw = {k: v for k, v in SEED_LIMITED_SWAP.items() if k != "swapBehavior"}
    spec = build_pod("x", "lab", "uid-1", ExperimentSpec.from_spec(raw))["spec"]
    assert not {"nodeSelector", "tolerations", "affinity"} & set(spec)
    no_swap = build_pod(
        "x", "lab", "uid-1", ExperimentSpec.from_spec({**raw, "swapBehavior": "NoSwap"})
    )["spec"]
    assert set(no_swap) >= {"affinity"} and "tolerations" not in no_swap


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"swapBehavior": "UnlimitedSwap"}, "spec.swapBehavior", "NoSwap or LimitedSwap"),
        (
            {"nodeSelector": {"oomlab.dev/swap-behavior": "NoSwap"}},
            "spec.nodeSelector",
            "contradicts swapBehavior LimitedSwap",
        ),
    ],
)
def test_swap_behavior_is_checked(overrides: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        ExperimentSpec.from_spec({**SEED_LIMITED_SWAP, **overrides})
    assert caught.value.field == field
    assert says in str(caught.value)


def test_what_the_node_does_comes_from_the_node_then_the_spec() -> None:
    config = OperatorConfig()
    limited, no_swap = SwapBehavior.LIMITED_SWAP, SwapBehavior.NO_SWAP
    assert resolve_swap_behavior(config, "NoSwap", VM_NODE, no_swap) == limited
    assert resolve_swap_behavior(config, "NoSwap", HOST_NODE, limited) == limited
    assert resolve_swap_behavior(config, "NoSwap", None, None) == no_swap
    assert resolve_swap_behavior(config, None, None, None) == config.swap_behavior
    assert resolve_cgroup_version(config, None, None, VM_NODE) == CgroupVersion.V2
    assert resolve_cgroup_version(config, {"version": 1}, None, VM_NODE) == CgroupVersion.V1


# --- the status on the VM node ----------------------------------------------------------------


def body_of(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "oomlab.dev/v1alpha1",
        "kind": "OOMExperiment",
        "metadata": {"name": "seed-limited-swap", "namespace": "lab", "uid": "u", "generation": 1},
        "spec": spec,
    }


def finished(outcome: Outcome, swap_max: int, qos: str) -> Observation:
    cgroup = {"version": 2, "memory_limit_bytes": 500 * MiB, "swap_limit_bytes": swap_max}
    phase = Phase.COMPLETED if outcome == Outcome.COMPLETED else Phase.OOM_KILLED
    return Observation(
        phase=phase,
        outcome=outcome,
        exit_code=0 if outcome == Outcome.COMPLETED else 137,
        progress=Progress(allocated_bytes=1000 * MiB, lines=22, cgroup=cgroup),
        pod=PodFacts(name="oomx-seed", node_name="oomlab-vm", qos_class=qos),
    )


def on_vm(raw: dict[str, Any], observation: Observation | None = None) -> dict[str, Any]:
    """The status the operator writes for ``raw`` after ``observation``, on the VM node."""
    spec = ExperimentSpec.from_spec(raw)
    return assemble(
        body_of(raw), spec, OperatorConfig(), NOW, observation=observation, node=VM_NODE
    )


def test_status_of_the_burstable_seed_on_the_limited_swap_node() -> None:
    status = on_vm(SEED_LIMITED_SWAP, finished(Outcome.COMPLETED, 587_960_320, "Burstable"))
    k8s = status["kubernetes"]
    assert (k8s["swapBehavior"], k8s["cgroupVersion"]) == ("LimitedSwap", "v2")
    assert k8s["predictedSwapBytes"] == k8s["swapLimitBytes"] == 587_960_320
    assert k8s["swapLimitAgrees"] is True
    assert k8s["predictedOutcome"] == "Completed"
    assert k8s["transparentHugepages"] == "madvise"
    assert "'madvise' on the node" in k8s["explanation"]
    assert "The kernel set" not in k8s["explanation"]


def test_a_swap_limit_that_is_not_the_prediction_is_said() -> None:
    status = on_vm(SEED_LIMITED_SWAP, finished(Outcome.OOM_KILLED, 0, "Burstable"))
    k8s = status["kubernetes"]
    assert k8s["swapLimitAgrees"] is False
    assert k8s["explanation"].count("The kernel set a swap limit of 0 bytes") == 1
    # assembling again (a later event) does not repeat the sentence
    spec = ExperimentSpec.from_spec(SEED_LIMITED_SWAP)
    again = assemble(
        {**body_of(SEED_LIMITED_SWAP), "status": status}, spec, OperatorConfig(), NOW,
        node=VM_NODE,
    )  # fmt: skip
    assert again["kubernetes"]["explanation"].count("The kernel set") == 1


def test_status_of_the_guaranteed_seed_on_the_limited_swap_node() -> None:
    status = on_vm(GUARANTEED, finished(Outcome.OOM_KILLED, 0, "Guaranteed"))
    k8s = status["kubernetes"]
    assert k8s["predictedSwapBytes"] == k8s["swapLimitBytes"] == 0
    assert k8s["swapLimitAgrees"] is True
    assert k8s["predictedOutcome"] == "OOMKilled"
    assert status["parity"]["result"] == "Mismatch"
    assert "Guaranteed QoS" in status["parity"]["explanation"]


def test_a_pending_limited_swap_experiment_says_limited_swap() -> None:
    spec = ExperimentSpec.from_spec(SEED_LIMITED_SWAP)
    status = assemble(body_of(SEED_LIMITED_SWAP), spec, OperatorConfig(), NOW)
    assert status["kubernetes"]["swapBehavior"] == "LimitedSwap"
