"""Admission of node-scale experiments: only a node labelled oomlab.dev/node-pressure=allowed."""

from __future__ import annotations

import asyncio
from typing import Any

from oomlab.experiment import ExperimentSpec
from oomlab.operator.node_pressure import admit
from oomlab.operator.state import OperatorState, node_record

MiB = 2**20


def node(name: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {"capacity": {"memory": "1496032Ki"}, "nodeInfo": {"swap": {"capacity": 2**31}}},
    }


STATE = OperatorState(
    nodes={
        "host": [node_record(node("host"))],
        "oomlab-vm": [
            node_record(
                node(
                    "oomlab-vm",
                    **{
                        "oomlab.dev/swap-behavior": "LimitedSwap",
                        "oomlab.dev/node-pressure": "allowed",
                    },
                )
            )
        ],
    }
)


def spec(swap: str, fill: str = "50%") -> ExperimentSpec:
    return ExperimentSpec.from_spec(
        {
            "workload": {"mode": "bulk", "size": "100Mi"},
            "resources": {"requests": {"memory": "100Mi"}},
            "swapBehavior": swap,
            "nodePressure": {"fill": fill},
        }
    )


def test_the_host_node_is_refused_with_a_sentence() -> None:
    refused = asyncio.run(admit(STATE, spec("NoSwap")))
    assert isinstance(refused, str)
    assert "no NoSwap node is labelled oomlab.dev/node-pressure=allowed" in refused
    assert "(nodes it could use: host)" in refused


def test_the_vm_node_is_admitted_pinned_and_sized_to_the_fill() -> None:
    admitted = asyncio.run(admit(STATE, spec("LimitedSwap")))
    assert isinstance(admitted, ExperimentSpec)
    assert admitted.node_selector["kubernetes.io/hostname"] == "oomlab-vm"
    assert admitted.workload.size_bytes == 1496032 * 1024 // 2


def test_an_ordinary_experiment_passes_unchanged() -> None:
    plain = ExperimentSpec.from_spec(
        {"workload": {"size": "100Mi"}, "resources": {"limits": {"memory": "200Mi"}}}
    )
    assert asyncio.run(admit(STATE, plain)) is plain
