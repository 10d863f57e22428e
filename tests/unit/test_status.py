"""The experiment's status, assembled by pure functions from spec, pod, node and Docker results
(with the phase, condition and node rules it is assembled from)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from oomlab.experiment import ExperimentSpec
from oomlab.handover import OBSERVATION_ANNOTATION
from oomlab.operator.config import OperatorConfig
from oomlab.operator.deadline import cleanup_deadline, timeout_deadline
from oomlab.operator.docker_view import docker_view
from oomlab.operator.kubernetes_view import (
    Observation,
    PodFacts,
    observation_from_verdict,
    owner_experiment,
    resolve_cgroup_version,
    timed_out_observation,
)
from oomlab.operator.status import assemble, invalid_spec_message, rejected_status, status_patch
from oomlab.rules.classify import Phase, classify_pod
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.results import CgroupVersion, Outcome, Progress
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.workload import parse_lines

MiB = 2**20
GiB = 2**30
NOW = datetime(2026, 11, 25, 20, 40, 5, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
FIXTURES = Path(__file__).parent / "fixtures" / "pods"
NODE = NodeFacts("oomlab-node", memory_capacity_bytes=24 * GiB, swap_capacity_bytes=2 * GiB)
CONFIG = OperatorConfig()

SEED_OOM = {
    "workload": {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi"},
    "resources": {"requests": {"memory": "500Mi"}, "limits": {"memory": "500Mi"}},
    "docker": {"memory": "500m", "memorySwap": "500m"},
}
SEED_SWAP = {
    "workload": {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi"},
    "resources": {"requests": {"memory": "250Mi"}, "limits": {"memory": "500Mi"}},
    "docker": {"memory": "500m", "memorySwap": "1g"},
}


def experiment(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "oomlab.dev/v1alpha1",
        "kind": "OOMExperiment",
        "metadata": {
            "name": "seed-oom",
            "namespace": "default",
            "uid": "4be0a3e2-8f3a-4d7e-b1a3-6d2f0c9e5a10",
            "generation": 1,
            "creationTimestamp": "2026-11-25T20:40:00Z",
        },
        "spec": spec,
    }
    if status is not None:
        body["status"] = status
    return body


def pod(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((FIXTURES / name).read_text())
    return document


def observe(pod_doc: dict[str, Any], limit: int = 500 * MiB) -> Observation:
    progress = None
    for status in pod_doc["status"].get("containerStatuses") or []:
        message = (status.get("state", {}).get("terminated") or {}).get("message")
        if message:
            progress = parse_lines(message.splitlines())
    verdict = classify_pod(
        pod_doc, limit_bytes=limit, allocated_bytes=progress.allocated_bytes if progress else None
    )
    return observation_from_verdict(verdict, pod_doc, progress)


def run_through(
    spec: dict[str, Any], *fixtures: str, node: NodeFacts | None = NODE
) -> dict[str, Any]:
    """Accept, then feed pod documents one by one, as the operator would."""
    parsed = ExperimentSpec.from_spec(spec)
    body = experiment(spec)
    created = Observation(phase=Phase.PENDING, message="created", pod=PodFacts(name="oomx-p"))
    body["status"] = assemble(
        body,
        parsed,
        CONFIG,
        NOW,
        observation=created,
        pod_created=("Created", "Created pod oomx-p."),
    )
    for name in fixtures:
        body["status"] = assemble(
            body, parsed, CONFIG, LATER, observation=observe(pod(name)), node=node
        )
    return body["status"]


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in status["conditions"] if c["type"] == type_]
    assert len(found) == 1, status["conditions"]
    return found[0]


# ---------------------------------------------------------------------------------- lifecycle


def test_accepted_experiment_is_pending_with_docker_prediction_at_once() -> None:
    status = run_through(SEED_SWAP)
    assert status["phase"] == "Pending"
    assert status["observedGeneration"] == 1
    docker = status["docker"]
    assert docker["source"] == "Predicted"
    assert docker["outcome"] == docker["predictedOutcome"] == "Completed"
    assert docker["memoryBytes"] == 500 * MiB
    assert docker["memorySwapBytes"] == GiB
    assert docker["swapBytes"] == GiB - 500 * MiB
    assert "524 MiB of swap" in docker["explanation"]
    assert status["kubernetes"]["podName"] == "oomx-p"
    assert status["kubernetes"]["qosClass"] == "Burstable"
    assert "predictedOutcome" not in status["kubernetes"]  # the node is not known yet
    assert condition(status, "Valid")["status"] == "True"
    assert condition(status, "PodCreated")["reason"] == "Created"
    assert condition(status, "Finished")["status"] == "False"
    assert status["parity"]["result"] == "Unknown"


@pytest.mark.parametrize(
    ("node", "recorded"),
    [
        (NodeFacts("n", 24 * GiB, 2 * GiB, kubelet_version="v1.37.2"), "v1.37.2"),
        (NodeFacts("n", 24 * GiB, 2 * GiB, kubelet_version="v1.34.4"), "v1.34.4"),
        (NodeFacts("n", 24 * GiB, 2 * GiB), None),
        (None, None),
    ],
)
def test_status_records_the_kubelet_version_of_the_node(
    node: NodeFacts | None, recorded: str | None
) -> None:
    status = run_through(SEED_SWAP, "running.yaml", node=node)
    assert status["kubernetes"].get("kubeletVersion") == recorded


def test_every_kubernetes_field_the_status_writes_is_in_the_crd() -> None:
    crd = yaml.safe_load(
        (Path(__file__).parents[2] / "manifests/crd/oomexperiments.yaml").read_text()
    )
    (version,) = crd["spec"]["versions"]
    kubernetes = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"][
        "kubernetes"
    ]
    assert kubernetes["properties"]["kubeletVersion"]["type"] == "string"
    node = NodeFacts(
        "n", 24 * GiB, 2 * GiB, cgroup_version=CgroupVersion.V1, thp="madvise",
        kubelet_version="v1.37.2",
    )  # fmt: skip
    status = run_through(SEED_SWAP, "oomkilled.yaml", node=node)
    assert {"kubeletVersion", "failCgroupV1", "kubeletNote"} <= set(status["kubernetes"])
    assert set(status["kubernetes"]) <= set(kubernetes["properties"])


def test_seed_oom_ends_oomkilled_with_facts_and_parity_match() -> None:
    status = run_through(SEED_OOM, "running.yaml", "oomkilled.yaml")
    assert status["phase"] == "OOMKilled"
    k8s = status["kubernetes"]
    assert k8s["outcome"] == "OOMKilled"
    assert k8s["exitCode"] == 137
    assert k8s["reason"] == "OOMKilled"
    assert k8s["allocatedBytes"] == 500 * MiB
    assert k8s["allocatedBytes"] <= 500 * MiB
    assert k8s["peakBytes"] == 535822336
    assert k8s["nodeName"] == "oomlab-node"
    assert k8s["qosClass"] == "Guaranteed"
    assert k8s["swapBehavior"] == "NoSwap"
    assert k8s["predictedSwapBytes"] == 0
    assert k8s["predictedOutcome"] == "OOMKilled"
    assert k8s["startedAt"] == "2026-11-25T20:40:02Z"
    assert k8s["finishedAt"] == "2026-11-25T20:40:03Z"
    assert k8s["durationSeconds"] == 1.0
    assert status["parity"]["result"] == "Match"
    assert condition(status, "Finished")["status"] == "True"
    assert condition(status, "Finished")["reason"] == "OOMKilled"
    assert condition(status, "ParityKnown") == {
        **condition(status, "ParityKnown"),
        "status": "True",
        "reason": "Match",
    }


def test_seed_swap_on_a_no_swap_node_is_a_mismatch_naming_noswap() -> None:
    status = run_through(SEED_SWAP, "oomkilled.yaml")
    assert status["phase"] == "OOMKilled"
    assert status["parity"]["result"] == "Mismatch"
    assert "swapBehavior is NoSwap" in status["parity"]["explanation"]
    assert status["parity"]["explanation"].startswith("Docker (predicted) completes")


def test_workload_cgroup_report_names_cgroup_v1() -> None:
    parsed = ExperimentSpec.from_spec(SEED_SWAP)
    body = experiment(SEED_SWAP)
    report = Progress(allocated_bytes=500 * MiB, lines=3, cgroup={"version": "v1"})
    oom = observe(pod("oomkilled.yaml"))
    observation = Observation(**{**oom.__dict__, "progress": report})
    status = assemble(body, parsed, CONFIG, NOW, observation=observation, node=NODE)
    assert status["kubernetes"]["cgroupVersion"] == "v1"
    assert "cgroup v1" in status["parity"]["explanation"]


def test_completed_pod() -> None:
    status = run_through(SEED_OOM, "running.yaml", "completed.yaml")
    assert status["phase"] == "Completed"
    assert status["kubernetes"]["exitCode"] == 0
    assert status["message"] == "The workload completed."


def test_running_records_start_and_does_not_regress_to_pending() -> None:
    status = run_through(SEED_OOM, "running.yaml", "unschedulable.yaml")
    assert status["phase"] == "Running"
    assert status["message"] == "The workload is running."
    assert status["kubernetes"]["startedAt"] == "2026-11-25T20:40:02Z"


def test_first_terminal_phase_sticks() -> None:
    status = run_through(SEED_OOM, "oomkilled.yaml", "deadline-exceeded.yaml", "completed.yaml")
    assert status["phase"] == "OOMKilled"
    assert status["kubernetes"]["exitCode"] == 137
    assert status["kubernetes"]["outcome"] == "OOMKilled"


def test_failed_pod_with_message() -> None:
    status = run_through(SEED_OOM, "err-image-never-pull.yaml")
    assert status["phase"] == "Failed"
    assert status["kubernetes"]["reason"] == "ErrImageNeverPull"
    assert "imagePullPolicy is Never" in status["message"]
    assert status["parity"]["result"] == "Unknown"


def handed_over(body: dict[str, Any], document: dict[str, Any] | str) -> dict[str, Any]:
    """The experiment after ``oomlab parity`` annotated it (a dict is written as JSON)."""
    text = document if isinstance(document, str) else json.dumps(document)
    metadata = {**body["metadata"], "annotations": {OBSERVATION_ANNOTATION: text}}
    return {**body, "metadata": metadata}


OBSERVED_COMPLETED = {
    "outcome": "Completed",
    "exitCode": 0,
    "reason": "completed",
    "oomKilled": False,
    "host": "lab",
    "flags": {"memory": "500m", "memorySwap": "1g"},
    "observedAt": "2026-11-25T20:41:00Z",
}


def test_docker_observation_overrides_prediction_and_recomputes_parity() -> None:
    parsed = ExperimentSpec.from_spec(SEED_SWAP)
    body = handed_over(experiment(SEED_SWAP, run_through(SEED_SWAP, "oomkilled.yaml")),
                       OBSERVED_COMPLETED)  # fmt: skip
    status = assemble(body, parsed, CONFIG, LATER, node=NODE)
    assert status["docker"]["source"] == "Observed"
    assert status["docker"]["outcome"] == "Completed"
    assert status["docker"]["predictedOutcome"] == "Completed"
    assert status["docker"]["observed"] == {
        "outcome": "Completed",
        "exitCode": 0,
        "oomKilled": False,
        "host": "lab",
        "reason": "completed",
        "recordedAt": "2026-11-25T20:41:00Z",
    }
    assert status["parity"]["result"] == "Mismatch"
    assert status["parity"]["explanation"].startswith("Docker (observed) completes")
    docker_observed = condition(status, "DockerObserved")
    assert (docker_observed["status"], docker_observed["reason"]) == ("True", "Observed")
    assert "observed on lab at 2026-11-25T20:41:00Z (Completed)" in docker_observed["message"]
    # the Kubernetes result is untouched
    assert status["kubernetes"]["outcome"] == "OOMKilled"
    # and a later assembly (a pod event) changes nothing
    assert status_patch(status, assemble({**body, "status": status}, parsed, CONFIG, LATER,
                                         node=NODE)) == {}  # fmt: skip


def test_the_operators_configuration_governs_the_folded_docker_view() -> None:
    """The same hand-over, folded by operators configured differently: the observed outcome is
    the run's, the prediction and its explanation the operator's."""
    parsed = ExperimentSpec.from_spec(SEED_SWAP)
    body = handed_over(experiment(SEED_SWAP, run_through(SEED_SWAP, "oomkilled.yaml")),
                       OBSERVED_COMPLETED)  # fmt: skip
    default = assemble(body, parsed, CONFIG, LATER, node=NODE)["docker"]
    no_swap_host = OperatorConfig(docker_host_swap_bytes=0)
    strict = assemble(body, parsed, no_swap_host, LATER, node=NODE)["docker"]
    assert default["outcome"] == strict["outcome"] == "Completed"
    assert (default["predictedOutcome"], strict["predictedOutcome"]) == ("Completed", "OOMKilled")
    assert "host has no swap" in strict["explanation"]
    assert "host has no swap" not in default["explanation"]


@pytest.mark.parametrize(
    ("annotation", "words"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "is not a JSON object"),
        (json.dumps({**OBSERVED_COMPLETED, "outcome": "Fine"}), "'Fine' is not one of"),
        (json.dumps({**OBSERVED_COMPLETED, "observedAt": "yesterday"}), "is not an RFC 3339"),
        (
            json.dumps({**OBSERVED_COMPLETED, "flags": {"memory": "1g"}}),
            "not with this experiment's flags",
        ),
    ],
)
def test_an_unusable_hand_over_is_a_false_condition_and_keeps_what_was_recorded(
    annotation: str, words: str
) -> None:
    parsed = ExperimentSpec.from_spec(SEED_SWAP)
    body = handed_over(experiment(SEED_SWAP, run_through(SEED_SWAP, "oomkilled.yaml")),
                       OBSERVED_COMPLETED)  # fmt: skip
    folded = assemble(body, parsed, CONFIG, LATER, node=NODE)
    broken = handed_over({**body, "status": folded}, annotation)
    status = assemble(broken, parsed, CONFIG, LATER, node=NODE)
    bad = condition(status, "DockerObserved")
    assert (bad["status"], bad["reason"]) == ("False", "BadObservation")
    assert words in bad["message"]
    assert bad["message"].endswith(".")
    assert status["docker"] == folded["docker"]  # the last good run stays
    assert status["phase"] == "OOMKilled"


def test_a_hand_over_without_docker_flags_says_so() -> None:
    spec_raw = {k: v for k, v in SEED_OOM.items() if k != "docker"}
    body = handed_over(experiment(spec_raw), OBSERVED_COMPLETED)
    status = assemble(body, ExperimentSpec.from_spec(spec_raw), CONFIG, NOW)
    assert "docker" not in status
    assert "no spec.docker flags" in condition(status, "DockerObserved")["message"]


# ---------------------------------------------------------------------------------- Docker view


@pytest.mark.parametrize(
    ("flags", "memory_swap", "swap", "outcome"),
    [
        ({"memory": "500m", "memorySwap": "500m"}, 500 * MiB, 0, "OOMKilled"),
        ({"memory": "500m"}, 1000 * MiB, 500 * MiB, "OOMKilled"),  # 2x rule, 1012 MiB > 1000 MiB
        ({"memory": "500m", "memorySwap": "-1"}, -1, None, "Completed"),
        ({"memory": "1g", "memorySwap": "1g"}, GiB, 0, "Completed"),
    ],
)
def test_docker_view_of_the_seed_table(
    flags: dict[str, str], memory_swap: int, swap: int | None, outcome: str
) -> None:
    spec = ExperimentSpec.from_spec({**SEED_OOM, "docker": flags})
    view = docker_view(spec, CONFIG, None)
    assert view.section is not None
    assert view.section["memorySwapBytes"] == memory_swap
    assert view.section.get("swapBytes") == swap
    assert view.section["predictedOutcome"] == outcome


def test_docker_view_with_a_host_without_swap() -> None:
    spec = ExperimentSpec.from_spec(SEED_SWAP)
    view = docker_view(spec, OperatorConfig(docker_host_swap_bytes=0), None)
    assert view.section is not None
    assert view.section["predictedOutcome"] == "OOMKilled"
    assert "host has no swap" in view.section["explanation"]


def test_docker_flags_docker_refuses() -> None:
    spec = ExperimentSpec.from_spec({**SEED_OOM, "docker": {"memory": "1g", "memorySwap": "500m"}})
    parsed = assemble(
        experiment(spec_raw := {**SEED_OOM, "docker": {"memory": "1g", "memorySwap": "500m"}}),
        spec,
        CONFIG,
        NOW,
    )
    assert spec_raw["docker"]["memory"] == "1g"
    assert parsed["docker"]["outcome"] == "Refused"
    assert "must be at least --memory" in parsed["docker"]["explanation"]
    assert parsed["parity"]["result"] == "Unknown"
    assert "Docker refuses" in parsed["parity"]["explanation"]


def test_no_docker_flags_means_no_docker_section() -> None:
    spec_raw = {k: v for k, v in SEED_OOM.items() if k != "docker"}
    status = assemble(experiment(spec_raw), ExperimentSpec.from_spec(spec_raw), CONFIG, NOW)
    assert "docker" not in status
    assert "spec.docker" in status["parity"]["explanation"]


# ---------------------------------------------------------------------------------- invalid


def test_invalid_spec_status() -> None:
    message = invalid_spec_message("spec.workload.size", "workload.size 16 GiB is over the cap")
    status = rejected_status(
        experiment(SEED_OOM),
        phase=Phase.INVALID,
        reason="InvalidSpec",
        message=message,
        now=NOW,
        spec_valid=False,
    )
    assert status["phase"] == "Invalid"
    assert status["message"] == "spec.workload.size: Workload.size 16 GiB is over the cap."
    valid = condition(status, "Valid")
    assert (valid["status"], valid["reason"], valid["message"]) == ("False", "InvalidSpec", message)
    assert condition(status, "Finished")["status"] == "True"
    assert status["parity"]["result"] == "Unknown"
    # and nothing a later event brings changes it
    body = experiment(SEED_OOM, status)
    again = assemble(
        body,
        ExperimentSpec.from_spec(SEED_OOM),
        CONFIG,
        LATER,
        observation=observe(pod("completed.yaml")),
    )
    assert status_patch(status, again) == {}


def test_quota_refusal_keeps_the_docker_prediction() -> None:
    spec = ExperimentSpec.from_spec(SEED_OOM)
    status = rejected_status(
        experiment(SEED_OOM),
        phase=Phase.INVALID,
        reason="QuotaExceeded",
        message="The namespace's ResourceQuota refused the pod.",
        now=NOW,
        spec_valid=True,
        spec=spec,
        config=CONFIG,
    )
    assert status["phase"] == "Invalid"
    assert condition(status, "Valid")["status"] == "True"
    created = condition(status, "PodCreated")
    assert (created["status"], created["reason"]) == ("False", "QuotaExceeded")
    assert status["docker"]["predictedOutcome"] == "OOMKilled"


# ---------------------------------------------------------------------------------- helpers


def test_status_patch_is_minimal_and_empty_when_nothing_changed() -> None:
    current = {"phase": "Running", "kubernetes": {"podName": "p", "nodeName": "n"}, "x": [1]}
    assert status_patch(current, current) == {}
    desired = {"phase": "OOMKilled", "kubernetes": {"podName": "p", "exitCode": 137}, "x": [1]}
    assert status_patch(current, desired) == {"phase": "OOMKilled", "kubernetes": {"exitCode": 137}}


def test_same_observation_twice_gives_an_empty_patch() -> None:
    parsed = ExperimentSpec.from_spec(SEED_OOM)
    body = experiment(SEED_OOM, run_through(SEED_OOM, "running.yaml"))
    again = assemble(
        body,
        parsed,
        CONFIG,
        LATER + timedelta(seconds=5),
        observation=observe(pod("running.yaml")),
        node=NODE,
    )
    assert status_patch(body["status"], again) == {}


def test_cgroup_version_resolution() -> None:
    configured = OperatorConfig(node_cgroup_version=CgroupVersion.V2)
    assert resolve_cgroup_version(configured, {"version": "v1"}) == CgroupVersion.V2
    assert resolve_cgroup_version(CONFIG, {"version": 1}) == CgroupVersion.V1
    assert resolve_cgroup_version(CONFIG, {"version": "v2"}, "v1") == CgroupVersion.V2
    assert resolve_cgroup_version(CONFIG, None, "v1") == CgroupVersion.V1
    assert resolve_cgroup_version(CONFIG, None) == CgroupVersion.UNKNOWN


def test_limited_swap_config_predicts_a_share_on_a_v2_node() -> None:
    config = OperatorConfig(
        swap_behavior=SwapBehavior.LIMITED_SWAP, node_cgroup_version=CgroupVersion.V2
    )
    parsed = ExperimentSpec.from_spec(SEED_SWAP)
    running = pod("running.yaml")
    running["status"]["qosClass"] = "Burstable"  # what the API server computes for 250Mi/500Mi
    status = assemble(
        experiment(SEED_SWAP), parsed, config, NOW, observation=observe(running), node=NODE
    )
    assert status["kubernetes"]["qosClass"] == "Burstable"
    assert status["kubernetes"]["swapBehavior"] == "LimitedSwap"
    # request 250Mi / 24 GiB node x 2 GiB swap, in whole pages as memory.swap.max reads it
    assert (
        status["kubernetes"]["predictedSwapBytes"]
        == 250 * MiB * 2 * GiB // (24 * GiB) // 4096 * 4096
    )
    assert status["kubernetes"]["predictedOutcome"] == "OOMKilled"
    # the pod's own qosClass wins over the spec's: a Guaranteed pod gets no share
    guaranteed = assemble(
        experiment(SEED_SWAP),
        parsed,
        config,
        NOW,
        observation=observe(pod("running.yaml")),
        node=NODE,
    )
    assert guaranteed["kubernetes"]["predictedSwapBytes"] == 0


def test_owner_experiment() -> None:
    owner = owner_experiment(pod("oomkilled.yaml"))
    assert owner is not None
    assert (owner.name, owner.uid) == ("seed-oom", "4be0a3e2-8f3a-4d7e-b1a3-6d2f0c9e5a10")
    assert (
        owner_experiment(
            {
                "metadata": {
                    "ownerReferences": [
                        {"kind": "Job", "name": "j", "uid": "u", "apiVersion": "batch/v1"}
                    ]
                }
            }
        )
        is None
    )


def test_timeout_deadline_from_start_else_creation() -> None:
    spec = ExperimentSpec.from_spec({**SEED_OOM, "timeoutSeconds": 60})
    created = datetime(2026, 11, 25, 20, 40, 0, tzinfo=UTC)
    assert timeout_deadline(experiment(SEED_OOM), spec) == created + timedelta(seconds=60)
    started = experiment(SEED_OOM, {"kubernetes": {"startedAt": "2026-11-25T20:41:00Z"}})
    assert timeout_deadline(started, spec) == created + timedelta(seconds=120)


def test_cleanup_deadline_only_for_finished_experiments_with_a_ttl() -> None:
    with_ttl = {**SEED_OOM, "ttlSecondsAfterFinished": 30}
    spec = ExperimentSpec.from_spec(with_ttl)
    finished = run_through(with_ttl, "oomkilled.yaml")
    assert cleanup_deadline(experiment(with_ttl, finished), spec) == datetime(
        2026, 11, 25, 20, 40, 33, tzinfo=UTC
    )
    running = run_through(with_ttl, "running.yaml")
    assert cleanup_deadline(experiment(with_ttl, running), spec) is None
    no_ttl = ExperimentSpec.from_spec(SEED_OOM)
    assert cleanup_deadline(experiment(SEED_OOM, finished), no_ttl) is None


def test_operator_timeout_observation() -> None:
    spec = ExperimentSpec.from_spec({**SEED_OOM, "timeoutSeconds": 60})
    body = experiment(SEED_OOM, {"kubernetes": {"startedAt": "2026-11-25T20:40:02Z"}})
    observation = timed_out_observation(spec, body, None, NOW + timedelta(seconds=60))
    assert observation.phase == Phase.TIMED_OUT
    assert observation.outcome == Outcome.TIMED_OUT
    assert "timeout of 60s since the pod started" in (observation.message or "")
    assert observation.duration_s == 63.0
    never_started = timed_out_observation(spec, experiment(SEED_OOM), None, NOW)
    assert "since the pod was created" in (never_started.message or "")
    status = assemble(body, spec, CONFIG, NOW, observation=observation)
    assert status["phase"] == "TimedOut"
    assert status["kubernetes"]["outcome"] == "TimedOut"


def test_the_host_node_status_says_failcgroupv1_and_what_cgroup_v1_means() -> None:
    host = NodeFacts(
        "oomlab-node", 24 * GiB, 2 * GiB, SwapBehavior.NO_SWAP, CgroupVersion.V1,
        kubelet_version="v1.37.2", fail_cgroup_v1=False,
    )  # fmt: skip
    k8s = run_through(SEED_SWAP, "running.yaml", node=host)["kubernetes"]
    assert k8s["failCgroupV1"] is False
    assert "only because its configuration sets failCgroupV1: false" in k8s["kubeletNote"]
    vm = NodeFacts(
        "oomlab-vm", 24 * GiB, 2 * GiB, SwapBehavior.LIMITED_SWAP, CgroupVersion.V2,
        kubelet_version="v1.34.4",
    )  # fmt: skip
    k8s = run_through(SEED_SWAP, "running.yaml", node=vm)["kubernetes"]
    assert k8s["failCgroupV1"] is False  # 1.34's default; on cgroup v2 it does not matter
    assert "kubeletNote" not in k8s
