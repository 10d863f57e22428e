"""The experiment's one pod: least privilege, stable short name, QoS from memory, memhog args."""

from __future__ import annotations

import re
from typing import Any

import pytest

from oomlab.experiment import (
    LABEL_EXPERIMENT_UID,
    LABEL_NAME,
    POD_APP,
    ExperimentSpec,
    InvalidSpec,
    build_pod,
    pod_name,
)
from oomlab.rules.semantics import QoSClass

UID = "4be0a3e2-8f3a-4d7e-b1a3-6d2f0c9e5a10"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workload": {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi"},
        "resources": {"requests": {"memory": "500Mi"}, "limits": {"memory": "500Mi"}},
        "docker": {"memory": "500m", "memorySwap": "500m"},
    }
    base.update(overrides)
    return base


def pod_for(raw: dict[str, Any], name: str = "seed-oom") -> dict[str, Any]:
    return build_pod(name, "lab", UID, ExperimentSpec.from_spec(raw))


def test_container_runs_with_least_privilege() -> None:
    pod = pod_for(spec())
    pod_spec = pod["spec"]
    container = pod_spec["containers"][0]
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] != 0
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert "hostNetwork" not in pod_spec
    assert "ports" not in container


def test_last_log_lines_reach_the_status_and_output_is_unbuffered() -> None:
    container = pod_for(spec())["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert {"name": "PYTHONUNBUFFERED", "value": "1"} in container["env"]


def test_labels_never_carry_the_raw_name() -> None:
    long_name = "a-very-long-experiment-name-" + "x" * 200
    pod = pod_for(spec(), name=long_name)
    labels = pod["metadata"]["labels"]
    assert labels[LABEL_NAME] == POD_APP
    assert labels[LABEL_EXPERIMENT_UID] == UID
    assert all(len(value) <= 63 for value in labels.values())
    assert long_name not in labels.values()
    assert pod["metadata"]["annotations"]["oomlab.dev/experiment"] == long_name


@pytest.mark.parametrize(
    "name", ["seed-oom", "x" * 253, "Upper.Case.Dots", "trailing-dash-" + "y" * 60 + "-", "a"]
)
def test_pod_name_is_a_short_stable_dns_label(name: str) -> None:
    first = pod_name(name, UID)
    assert first == pod_name(name, UID)
    assert len(first) <= 63
    assert DNS_LABEL.match(first), first
    assert first.startswith("oomx-")


def test_pod_name_differs_per_experiment_incarnation() -> None:
    assert pod_name("seed-oom", UID) != pod_name("seed-oom", UID.replace("4", "5"))


def test_pod_name_of_the_seed() -> None:
    assert pod_name("seed-oom", UID).startswith("oomx-seed-oom-")
    assert build_pod("seed-oom", "lab", UID, ExperimentSpec.from_spec(spec()))["metadata"][
        "name"
    ] == pod_name("seed-oom", UID)


@pytest.mark.parametrize(
    ("requests", "limits", "qos"),
    [
        ({"memory": "500Mi"}, {"memory": "500Mi"}, QoSClass.GUARANTEED),
        ({"memory": "250Mi"}, {"memory": "500Mi"}, QoSClass.BURSTABLE),
        ({}, {"memory": "500Mi"}, QoSClass.GUARANTEED),
    ],
)
def test_qos_follows_memory(
    requests: dict[str, str], limits: dict[str, str], qos: QoSClass
) -> None:
    experiment = ExperimentSpec.from_spec(spec(resources={"requests": requests, "limits": limits}))
    assert experiment.qos == qos
    resources = build_pod("e", "lab", UID, experiment)["spec"]["containers"][0]["resources"]
    # CPU request == limit, so memory alone decides the class the API server will compute.
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"]
    assert resources["limits"]["memory"] == limits["memory"]
    assert resources["requests"]["memory"] == requests.get("memory", limits["memory"])


def test_args_are_memhogs_command_line() -> None:
    leak = spec(workload={"mode": "leak", "size": "400Mi", "step": "20Mi", "interval": 0.25})
    assert pod_for(leak)["spec"]["containers"][0]["args"] == [
        "leak",
        "--size",
        "400Mi",
        "--step",
        "20Mi",
        "--interval",
        "0.25",
    ]
    assert pod_for(spec())["spec"]["containers"][0]["args"] == [
        "bulk",
        "--size",
        "1000Mi",
        "--chunk",
        "500Mi",
    ]


def test_timeout_and_scheduling_fields_reach_the_pod() -> None:
    raw = spec(
        timeoutSeconds=42,
        runtimeClassName="runc",
        nodeSelector={"kubernetes.io/hostname": "oomlab-node"},
        tolerations=[{"key": "lab", "operator": "Exists"}],
        priorityClassName="low",
        workload={
            "mode": "bulk",
            "size": "1000Mi",
            "image": "oomlab/memhog:v1",
            "imagePullPolicy": "Never",
        },
    )
    pod_spec = pod_for(raw)["spec"]
    assert pod_spec["activeDeadlineSeconds"] == 42
    assert pod_spec["runtimeClassName"] == "runc"
    assert pod_spec["nodeSelector"] == {"kubernetes.io/hostname": "oomlab-node"}
    assert pod_spec["tolerations"] == [{"key": "lab", "operator": "Exists"}]
    assert pod_spec["priorityClassName"] == "low"
    assert pod_spec["containers"][0]["image"] == "oomlab/memhog:v1"
    assert pod_spec["containers"][0]["imagePullPolicy"] == "Never"


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"resources": {"limits": {"memory": "500m"}}}, "spec.resources.limits.memory", "milli"),
        ({"resources": {"limits": {}}}, "spec.resources.limits.memory", "required"),
        (
            {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "500Mi"}}},
            "spec.resources.requests.memory",
            "cannot exceed",
        ),
        ({"workload": {"size": "0"}}, "spec.workload", "greater than zero"),
    ],
)
def test_invalid_specs_name_the_field(overrides: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        ExperimentSpec.from_spec(spec(**overrides))
    assert caught.value.field == field
    assert words in str(caught.value)


def test_size_over_the_cap_is_invalid_with_the_cap_named() -> None:
    with pytest.raises(InvalidSpec) as caught:
        ExperimentSpec.from_spec(
            spec(workload={"size": "2Gi"}, resources={"limits": {"memory": "500Mi"}}),
            max_bytes=2**30,
        )
    assert caught.value.field == "spec.workload.size"
    assert "OOMLAB_MAX_EXPERIMENT_BYTES" in str(caught.value)
