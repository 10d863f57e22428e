"""A Docker run handed over by `oomlab parity` (an annotation) is folded in by the operator alone,
under the configuration of the operator that folds it, also when it was down at the time.

Needs what the rest of this tier needs: KUBECONFIG, the CRD and the memhog image on the node.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf.testing import KopfRunner

from lab import IMAGE, Lab, wait_for
from oomlab import kube
from oomlab.handover import OBSERVATION_ANNOTATION
from oomlab.operator.config import ENV_DOCKER_HOST_SWAP_BYTES
from oomlab.rules.classify import TERMINAL_PHASES as TERMINAL
from oomlab.rules.docker import DockerFlags
from oomlab.rules.results import CgroupVersion, HostFacts, Outcome, Progress, RunResult

MiB = 2**20
SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
RunOperator = Callable[..., AbstractContextManager[KopfRunner]]
COMPLETED = RunResult(
    runner="docker",
    outcome=Outcome.COMPLETED,
    reason="completed",
    exit_code=0,
    oom_killed=False,
    progress=Progress(allocated_bytes=0, processed_bytes=1000 * MiB, lines=4),
    duration_s=2.5,
    host=HostFacts(cgroup_version=CgroupVersion.V1, swap_total_bytes=2 * 2**30,
                   engine_version="20.10.24", hostname="lab-host"),
    runtime="runc",
)  # fmt: skip


def seed_swap() -> tuple[dict[str, Any], DockerFlags]:
    spec: dict[str, Any] = yaml.safe_load((SAMPLES / "seed-swap.yaml").read_text())["spec"]
    spec["workload"] = {**spec["workload"], "image": IMAGE, "imagePullPolicy": "Never"}
    docker = spec["docker"]
    return spec, DockerFlags(memory=docker.get("memory"), memory_swap=docker.get("memorySwap"))


def test_hand_over_while_down_is_folded_on_start_under_the_new_configuration(
    lab: Lab, run_operator: RunOperator, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, flags = seed_swap()
    monkeypatch.delenv(ENV_DOCKER_HOST_SWAP_BYTES, raising=False)
    with run_operator():
        lab.create("seed-swap", spec)
        before = lab.wait_phase("seed-swap", TERMINAL)
    assert before["phase"] == "OOMKilled", before
    assert before["docker"]["source"] == "Predicted"
    assert before["docker"]["predictedOutcome"] == "Completed"  # swap assumed on the Docker host

    # The operator is down: the hand-over is an annotation and nothing else changes.
    observed_at = kube.record_docker_observation(lab.namespace, "seed-swap", COMPLETED, flags)
    assert kube.wait_for_docker_fold(lab.namespace, "seed-swap", observed_at, timeout_s=2) is None
    experiment = lab.get("seed-swap") or {}
    assert OBSERVATION_ANNOTATION in experiment["metadata"]["annotations"]
    assert experiment["status"]["docker"] == before["docker"]

    # A new operator, told the Docker host has no swap, folds it in as it starts.
    with run_operator(env={ENV_DOCKER_HOST_SWAP_BYTES: "0"}):
        after = kube.wait_for_docker_fold(lab.namespace, "seed-swap", observed_at, timeout_s=60)
    assert after is not None, lab.status("seed-swap")
    docker = after["docker"]
    assert (docker["source"], docker["outcome"]) == ("Observed", "Completed")
    assert docker["observed"]["engineVersion"] == "20.10.24"
    assert docker["predictedOutcome"] == "OOMKilled"
    assert "host has no swap" in docker["explanation"]
    assert after["parity"]["result"] == "Mismatch"
    assert after["parity"]["explanation"].startswith("Docker (observed) completes")
    k8s = after["kubernetes"]
    no_swap_node = k8s["swapBehavior"] == "NoSwap" or k8s["cgroupVersion"] == "v1"
    expected = ("NoSwap", "cgroup v1") if no_swap_node else ("LimitedSwap",)
    assert any(word in after["parity"]["explanation"] for word in expected), after["parity"]
    assert after["phase"] == "OOMKilled"
    assert lab.status("seed-swap")["docker"] == docker  # kept after the operator stopped
    folded = next(c for c in after["conditions"] if c["type"] == "DockerObserved")
    assert folded["status"] == "True"


def test_unreadable_hand_over_becomes_a_condition(lab: Lab, run_operator: RunOperator) -> None:
    spec, _ = seed_swap()
    with run_operator():
        lab.create("seed-swap", spec)
        lab.wait_phase("seed-swap", TERMINAL)
        kube.patch_experiment_metadata(
            lab.namespace, "seed-swap", {"annotations": {OBSERVATION_ANNOTATION: "{not json"}}
        )
        bad = wait_for(
            lambda: next(
                (c for c in lab.status("seed-swap").get("conditions", [])
                 if c["type"] == "DockerObserved"),
                None,
            ),
            30,
            "the DockerObserved condition",
            lambda: str(lab.status("seed-swap").get("conditions")),
        )  # fmt: skip
        # the operator is still alive and answering: a good hand-over is folded in after it
        observed_at = kube.record_docker_observation(
            lab.namespace, "seed-swap", COMPLETED, seed_swap()[1]
        )
        after = kube.wait_for_docker_fold(lab.namespace, "seed-swap", observed_at, timeout_s=30)
    assert (bad["status"], bad["reason"]) == ("False", "BadObservation")
    assert "is not JSON" in bad["message"]
    assert after is not None
    assert after["docker"]["source"] == "Observed"
