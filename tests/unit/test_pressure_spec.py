"""spec.nodePressure: parsing, the pod it asks for, the kubelet's eviction message, and how a
finished pod's node-pressure outcome is told."""

from __future__ import annotations

import pytest

from oomlab.experiment import ExperimentSpec, InvalidSpec, build_pod
from oomlab.rules.classify import (
    Phase,
    PodVerdict,
    classify_node_outcome,
    classify_pod,
    parse_eviction_message,
)
from oomlab.rules.pressure import NodeOutcome
from oomlab.rules.pressure_spec import (
    NODE_PRESSURE_LABEL,
    NodePressureSpec,
    allows_node_pressure,
    refusal_without_allowed_node,
)
from oomlab.rules.results import Outcome
from oomlab.rules.semantics import QoSClass

MiB = 2**20
KUBELET_MESSAGE = (
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 85432Ki. "
    "Container workload was using 1203Mi, request is 400Mi, has larger consumption of memory. "
)


def doc(**extra: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "workload": {"mode": "leak", "size": "1300Mi", "step": "20Mi", "interval": 0.5},
        "resources": {"requests": {"memory": "400Mi"}},
        "swapBehavior": "LimitedSwap",
        "nodePressure": {"fill": "85%", "bystanders": [{"qos": "BestEffort", "size": "200Mi"}]},
    }
    spec.update(extra)
    return spec


def test_a_node_pressure_experiment_may_have_no_limit() -> None:
    spec = ExperimentSpec.from_spec(doc())
    assert spec.limit_bytes is None and spec.request_bytes == 400 * MiB
    assert spec.qos == QoSClass.BURSTABLE
    assert spec.node_pressure is not None
    assert spec.node_pressure.fill_for(1000 * MiB) == 850 * MiB
    assert spec.node_pressure.bystanders[0].qos == QoSClass.BEST_EFFORT


def test_without_node_pressure_the_limit_stays_required() -> None:
    plain = doc()
    del plain["nodePressure"]
    with pytest.raises(InvalidSpec) as err:
        ExperimentSpec.from_spec(plain)
    assert err.value.field == "spec.resources.limits.memory"


def test_node_pressure_and_swap_cost_exclude_each_other() -> None:
    with pytest.raises(InvalidSpec) as err:
        ExperimentSpec.from_spec(doc(measureSwapCost=True))
    assert err.value.field == "spec.measureSwapCost"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"fill": "0%"}, "spec.nodePressure.fill"),
        ({"fill": "150%"}, "spec.nodePressure.fill"),
        ({"fill": "500m"}, "spec.nodePressure.fill"),
        ({"fill": "1Gi", "bystanders": [{"qos": "Best", "size": "1Mi"}]}, "bystanders[0].qos"),
        (
            {"fill": "1Gi", "bystanders": [{"qos": "BestEffort", "size": "1Mi", "request": "1Mi"}]},
            "bystanders[0].request",
        ),
        ({"fill": "1Gi", "bystanders": [{"qos": "BestEffort", "size": "1Mi"}] * 4}, "bystanders"),
    ],
)
def test_bad_node_pressure_names_its_field(raw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        NodePressureSpec.from_mapping(raw)
    assert err.value.field.endswith(field)


def test_the_pod_has_no_memory_limit_and_goes_only_to_an_allowed_node() -> None:
    pod = build_pod("np", "lab", "uid-1", ExperimentSpec.from_spec(doc()))
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "250m"}
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "400Mi"}
    assert pod["spec"]["nodeSelector"][NODE_PRESSURE_LABEL] == "allowed"


def test_allowed_label_and_refusal_sentence() -> None:
    assert allows_node_pressure({NODE_PRESSURE_LABEL: "allowed"})
    assert not allows_node_pressure({NODE_PRESSURE_LABEL: "true"})
    sentence = refusal_without_allowed_node(["host"], "NoSwap")
    assert "no NoSwap node is labelled oomlab.dev/node-pressure=allowed" in sentence
    assert "never on the host's own node" in sentence


def test_the_kubelets_eviction_message_is_read() -> None:
    facts = parse_eviction_message(KUBELET_MESSAGE)
    assert facts.signal == "memory.available"
    assert facts.threshold_bytes == 100 * MiB
    assert facts.available_bytes == 85432 * 1024
    assert (facts.usage_bytes, facts.request_bytes) == (1203 * MiB, 400 * MiB)
    assert (
        parse_eviction_message(
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: -2048Ki."
        ).available_bytes
        == -2 * MiB
    )
    assert parse_eviction_message(None).resource is None


def evicted_pod() -> dict[str, object]:
    return {"status": {"phase": "Failed", "reason": "Evicted", "message": KUBELET_MESSAGE}}


def killed(exit_code: int = 137, reason: str = "OOMKilled") -> PodVerdict:
    return PodVerdict(Phase.OOM_KILLED, Outcome.OOM_KILLED, reason, "x", exit_code=exit_code)


@pytest.mark.parametrize(
    ("verdict", "limit", "allocated", "swap", "system_oom", "expected"),
    [
        (classify_pod(evicted_pod()), None, None, None, False, NodeOutcome.EVICTED),
        (killed(), None, 900 * MiB, None, True, NodeOutcome.SYSTEM_OOM_KILLED),
        (killed(), 500 * MiB, 480 * MiB, None, False, NodeOutcome.OOM_KILLED),
        (killed(), 1000 * MiB, 300 * MiB, None, False, NodeOutcome.ALLOCATABLE_OOM_KILLED),
        (killed(), None, 1100 * MiB, None, False, NodeOutcome.ALLOCATABLE_OOM_KILLED),
        (
            PodVerdict(Phase.COMPLETED, Outcome.COMPLETED, "Completed", "x", exit_code=0),
            None,
            None,
            300 * MiB,
            False,
            NodeOutcome.COMPLETED_IN_SWAP,
        ),
        (
            PodVerdict(Phase.COMPLETED, Outcome.COMPLETED, "Completed", "x", exit_code=0),
            None,
            None,
            0,
            False,
            NodeOutcome.COMPLETED,
        ),
    ],
)
def test_node_outcome_is_told_apart(
    verdict: PodVerdict,
    limit: int | None,
    allocated: int | None,
    swap: int | None,
    system_oom: bool,
    expected: NodeOutcome,
) -> None:
    told = classify_node_outcome(
        verdict,
        limit_bytes=limit,
        allocated_bytes=allocated,
        swap_used_bytes=swap,
        system_oom=system_oom,
    )
    assert told is not None and told[0] == expected


def test_eviction_sentence_has_available_and_threshold() -> None:
    told = classify_node_outcome(
        classify_pod(evicted_pod()),
        limit_bytes=None,
        allocated_bytes=None,
        swap_used_bytes=None,
        system_oom=False,
    )
    assert told is not None
    assert "memory.available was 83 MiB against its 100 MiB threshold" in told[1]


def test_a_pod_that_failed_otherwise_has_no_node_outcome() -> None:
    verdict = PodVerdict(Phase.FAILED, Outcome.FAILED, "Error", "x", exit_code=1)
    assert (
        classify_node_outcome(
            verdict, limit_bytes=None, allocated_bytes=None, swap_used_bytes=None, system_oom=False
        )
        is None
    )
