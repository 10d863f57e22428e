"""The one OOMExperiment document: every spec field the CRD has, read back to the same spec, and
valid against the CRD's own schema; sizes refused before anything reaches a cluster."""

from __future__ import annotations

import pytest
from test_manifests import root_schema, schema_errors, walk

from oomlab.experiment import (
    KIND,
    DockerFlags,
    ExperimentSpec,
    InvalidSpec,
)
from oomlab.rules.pressure_spec import NodePressureSpec
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.units import MiB
from oomlab.rules.workload import Mode, WorkloadSpec

SEED = WorkloadSpec(Mode.BULK, 1000 * MiB)

SPECS = {
    "seed, Guaranteed": ExperimentSpec.build(SEED, limit="500Mi"),
    "Burstable, Docker pair, LimitedSwap": ExperimentSpec.build(
        SEED,
        limit="500Mi",
        request="250Mi",
        docker=DockerFlags("500m", "1g"),
        swap_behavior=SwapBehavior.LIMITED_SWAP,
    ),
    "re-access passes, chunk, hold": ExperimentSpec.build(
        WorkloadSpec(Mode.BULK, 600 * MiB, chunk_bytes=50 * MiB, hold_s=2.5, reaccess=3),
        limit="500Mi",
        request="400Mi",
        measure_swap_cost=True,
    ),
    "streaming window": ExperimentSpec.build(
        WorkloadSpec(Mode.STREAMING, 2 * 1024 * MiB, chunk_bytes=25 * MiB, window=4),
        limit=524288000,
        docker=DockerFlags("500m", None, runtime="crun"),
    ),
    "leak": ExperimentSpec.build(
        WorkloadSpec(Mode.LEAK, 300 * MiB, step_bytes=20 * MiB, interval_s=0.05),
        limit="1G",
        request="0.5Gi",
    ),
    "leak, resized mid-run": ExperimentSpec.build(
        WorkloadSpec(Mode.LEAK, 300 * MiB, step_bytes=10 * MiB, interval_s=1.0),
        limit="500Mi",
        request="400Mi",
        swap_behavior=SwapBehavior.LIMITED_SWAP,
        resize={"memoryRequest": "300Mi", "afterSeconds": 10},
    ),
    "spike, every scheduling field": ExperimentSpec.build(
        WorkloadSpec(Mode.SPIKE, 400 * MiB, base_bytes=100 * MiB),
        limit="512Mi",
        image="registry.example/memhog:1",
        image_pull_policy="Never",
        timeout_s=86400,
        ttl_after_finished_s=0,
        runtime_class="crun",
        priority_class="high",
        node_selector={"kubernetes.io/hostname": "oomlab-vm"},
        tolerations=[{"key": "oomlab.dev/swap", "operator": "Exists", "effect": "NoSchedule"}],
        swap_behavior=SwapBehavior.NO_SWAP,
    ),
    "Docker flags without sizes": ExperimentSpec.build(
        SEED, limit="500Mi", docker=DockerFlags(None, None)
    ),
    "odd byte count": ExperimentSpec.build(WorkloadSpec(Mode.BULK, 1_000_001), limit="2Mi"),
    "node pressure, no limit, bystanders": ExperimentSpec.build(
        WorkloadSpec(Mode.LEAK, 1300 * MiB, step_bytes=20 * MiB, interval_s=0.5),
        limit=None,
        request="400Mi",
        swap_behavior=SwapBehavior.LIMITED_SWAP,
        node_pressure=NodePressureSpec.from_mapping(
            {
                "fill": "85%",
                "bystanders": [
                    {"qos": "BestEffort", "size": "200Mi"},
                    {"qos": "Burstable", "size": "200Mi", "request": "100Mi"},
                ],
            }
        ),
    ),
}


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_the_document_reads_back_as_the_same_spec(spec: ExperimentSpec) -> None:
    doc = spec.to_document("x", namespace="lab", labels={"oomlab.dev/run": "r1"})
    assert (doc["kind"], doc["apiVersion"]) == (KIND, "oomlab.dev/v1alpha1")
    assert doc["metadata"] == {"name": "x", "namespace": "lab", "labels": {"oomlab.dev/run": "r1"}}
    assert ExperimentSpec.from_spec(doc["spec"]) == spec


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_the_document_matches_the_crd_schema(spec: ExperimentSpec) -> None:
    assert schema_errors(spec.to_document("x")) == []


def test_the_table_writes_every_spec_field_the_crd_has() -> None:
    # Named properties only: nodeSelector's keys and a toleration's fields are the caller's.
    in_crd = {
        path
        for path, _ in walk(root_schema())
        if path.startswith("spec.") and "[]" not in path and "{}" not in path
    }
    written = {
        path for spec in SPECS.values() for path in paths(spec.to_document("x")["spec"], "spec")
    }
    assert in_crd - written == set()


def paths(node: object, path: str) -> list[str]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, f"{path}.{key}")
    return found


def test_a_reaccess_workload_keeps_its_passes() -> None:
    workload = WorkloadSpec(Mode.BULK, 600 * MiB, reaccess=5)
    spec = ExperimentSpec.build(workload, limit="500Mi", request="400Mi")
    assert spec.to_document("again")["spec"]["workload"]["reaccess"] == 5


@pytest.mark.parametrize(
    ("limit", "asked", "field", "words"),
    [
        ("500m", None, "spec.resources.limits.memory", "0.5 bytes"),
        ("500Mi", "250m", "spec.resources.requests.memory", "'m' is milli in Kubernetes"),
        ("500Mi", "600Mi", "spec.resources.requests.memory", "cannot exceed the limit"),
        ("half", None, "spec.resources.limits.memory", "not a Kubernetes quantity"),
    ],
)
def test_sizes_are_refused_before_the_cluster(
    limit: str, asked: str | None, field: str, words: str
) -> None:
    with pytest.raises(InvalidSpec) as caught:
        ExperimentSpec.build(SEED, limit=limit, request=asked)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_docker_flags_timeout_and_selector_are_checked_too() -> None:
    with pytest.raises(InvalidSpec, match="Docker size") as caught:
        ExperimentSpec.build(SEED, limit="500Mi", docker=DockerFlags("500x"))
    assert caught.value.field == "spec.docker"
    with pytest.raises(InvalidSpec, match="between 1 and 86400"):
        ExperimentSpec.build(SEED, limit="500Mi", timeout_s=0)
    with pytest.raises(InvalidSpec, match="contradicts swapBehavior"):
        ExperimentSpec.build(
            SEED,
            limit="500Mi",
            swap_behavior=SwapBehavior.LIMITED_SWAP,
            node_selector={"oomlab.dev/swap-behavior": "NoSwap"},
        )


@pytest.mark.parametrize(
    ("resize", "memory_request", "message"),
    [
        ({"afterSeconds": 3}, "400Mi", "resize needs memoryRequest"),
        ({"memoryRequest": "300Mi"}, None, "below resources.limits.memory"),
        ({"memoryRequest": "300Mi"}, "500Mi", "below resources.limits.memory"),
        ({"memoryRequest": "400Mi"}, "400Mi", "must differ from the request"),
        ({"memoryRequest": "500Mi"}, "400Mi", "below the limit"),
        ({"memoryRequest": "300m"}, "400Mi", "whole number"),
        ({"memoryRequest": "300Mi", "afterSeconds": -1}, "400Mi", "afterSeconds"),
    ],
)
def test_a_resize_that_cannot_mean_anything_is_refused(
    resize: dict[str, object], memory_request: str | None, message: str
) -> None:
    from oomlab.experiment import InvalidSpec

    with pytest.raises(InvalidSpec, match=message):
        ExperimentSpec.build(SEED, limit="500Mi", request=memory_request, resize=resize)


def test_a_resize_reads_back() -> None:
    spec = ExperimentSpec.build(
        SEED, limit="500Mi", request="400Mi", resize={"memoryRequest": "300Mi"}
    )
    assert spec.resize is not None
    assert (spec.resize.memory_request_bytes, spec.resize.after_s) == (300 * MiB, 5)
    again = ExperimentSpec.from_spec(spec.to_document("x")["spec"])
    assert again.resize == spec.resize
