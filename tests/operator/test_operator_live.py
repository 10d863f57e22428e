"""The real operator against a real cluster: results, restarts, timeouts, invalid specs, deletion.

Needs KUBECONFIG, the CRD, and the memhog image on the node (``OOMLAB_TEST_IMAGE``, default
``oomlab/memhog:dev``, pulled never).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import yaml
from kopf.testing import KopfRunner

from lab import IMAGE, Lab, wait_for
from oomlab.experiment import pod_name
from oomlab.rules.classify import TERMINAL_PHASES as TERMINAL

MiB = 2**20
SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
RunOperator = Callable[..., AbstractContextManager[KopfRunner]]


def sample(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((SAMPLES / f"{name}.yaml").read_text())["spec"]
    spec["workload"] = {**spec["workload"], "image": IMAGE, "imagePullPolicy": "Never"}
    return spec


def bulk_spec(limit: str, *, timeout_seconds: int | None = None, **workload: Any) -> dict[str, Any]:
    """A bulk workload of the node's memhog image (pulled never, unless ``image`` says another)
    under a memory limit of ``limit``."""
    spec: dict[str, Any] = {
        "workload": {"mode": "bulk", "image": IMAGE, "imagePullPolicy": "Never", **workload},
        "resources": {"limits": {"memory": limit}},
    }
    if timeout_seconds is not None:
        spec["timeoutSeconds"] = timeout_seconds
    return spec


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_seed_oom_is_oomkilled_with_parity_match(lab: Lab, run_operator: RunOperator) -> None:
    with run_operator():
        created = lab.create("seed-oom", sample("seed-oom"))
        status = lab.wait_phase("seed-oom", TERMINAL)
        uid = created["metadata"]["uid"]
        events = lab.wait_event("seed-oom", "OOMKilled")

    assert status["phase"] == "OOMKilled", status
    k8s = status["kubernetes"]
    assert k8s["outcome"] == "OOMKilled"
    assert k8s["exitCode"] == 137
    assert k8s["reason"] in ("OOMKilled", "OOMKilledByEvidence")
    assert 0 < k8s["allocatedBytes"] <= 500 * MiB
    assert k8s["qosClass"] == "Guaranteed"
    assert k8s["nodeName"]
    assert k8s["podName"] == pod_name("seed-oom", uid)
    assert k8s["swapBehavior"] in ("NoSwap", "LimitedSwap")
    assert k8s["predictedSwapBytes"] == 0  # Guaranteed: no swap under either behaviour
    assert k8s["predictedOutcome"] == "OOMKilled"
    assert k8s["durationSeconds"] >= 0
    assert status["docker"]["source"] == "Predicted"
    assert status["docker"]["outcome"] == "OOMKilled"
    assert status["parity"]["result"] == "Match"
    assert condition(status, "Finished")["status"] == "True"
    assert status["observedGeneration"] == 1
    assert len(lab.pods(uid)) == 1
    reasons = [(e["type"], e["reason"]) for e in events]
    assert ("Normal", "Pending") in reasons
    assert ("Warning", "OOMKilled") in reasons
    assert reasons.count(("Warning", "OOMKilled")) == 1


def test_restart_mid_run_neither_duplicates_the_pod_nor_loses_the_result(
    lab: Lab, run_operator: RunOperator
) -> None:
    # About 6 s of steady growth to 300Mi under a 500Mi limit: completes.
    spec = {
        "workload": {"mode": "leak", "size": "300Mi", "step": "10Mi", "interval": 0.2,
                     "image": IMAGE, "imagePullPolicy": "Never"},
        "resources": {"requests": {"memory": "500Mi"}, "limits": {"memory": "500Mi"}},
    }  # fmt: skip
    with run_operator():
        uid = lab.create("leak", spec)["metadata"]["uid"]
        lab.wait_phase("leak", {"Running"}, timeout=60)
        first_pod = lab.pods(uid)[0]["metadata"]["uid"]
    # The operator is down; the workload finishes meanwhile.
    wait_for(
        lambda: all(p["status"]["phase"] == "Succeeded" for p in lab.pods(uid)),
        60,
        "the pod to finish while the operator is down",
    )
    assert lab.status("leak")["phase"] == "Running"
    with run_operator():
        status = lab.wait_phase("leak", TERMINAL, timeout=60)
    pods = lab.pods(uid)
    assert [p["metadata"]["uid"] for p in pods] == [first_pod]
    assert status["phase"] == "Completed", status
    assert status["kubernetes"]["exitCode"] == 0
    assert status["kubernetes"]["allocatedBytes"] is not None
    # The restarted operator's resume handler adopts the pod ("Adopted") unless the pod's event
    # wrote the terminal status first; then resume sees a finished experiment and leaves the
    # first run's "Created". Either order is correct: what matters is the one pod above.
    pod_created = condition(status, "PodCreated")
    assert pod_created["status"] == "True"
    assert pod_created["reason"] in {"Created", "Adopted"}, pod_created
    assert pods[0]["metadata"]["name"] in pod_created["message"], pod_created


def test_timeout_is_timed_out_and_the_pod_is_removed(lab: Lab, run_operator: RunOperator) -> None:
    spec = bulk_spec("200Mi", size="50Mi", hold=120, timeout_seconds=4)
    with run_operator():
        uid = lab.create("slow", spec)["metadata"]["uid"]
        status = lab.wait_phase("slow", TERMINAL, timeout=60)
        wait_for(lambda: not lab.pods(uid), 45, "the timed-out pod to be removed")
        events = [e["reason"] for e in lab.events("slow")]
    assert status["phase"] == "TimedOut", status
    assert status["kubernetes"]["outcome"] == "TimedOut"
    assert "TimedOut" in events


def test_size_over_the_cap_is_invalid_with_a_sentence(lab: Lab, run_operator: RunOperator) -> None:
    spec = bulk_spec("500Mi", size="2Gi")
    with run_operator(env={"OOMLAB_MAX_EXPERIMENT_BYTES": "1Gi"}):
        uid = lab.create("huge", spec)["metadata"]["uid"]
        status = lab.wait_phase("huge", TERMINAL, timeout=30)
        events = [(e["type"], e["reason"]) for e in lab.wait_event("huge", "Invalid")]
    assert status["phase"] == "Invalid"
    assert status["message"].startswith("spec.workload.size: ")
    assert "cap of 1 GiB" in status["message"]
    assert condition(status, "Valid")["status"] == "False"
    assert lab.pods(uid) == []
    assert ("Warning", "Invalid") in events


def test_missing_image_with_pull_never_fails_with_its_reason(
    lab: Lab, run_operator: RunOperator
) -> None:
    spec = bulk_spec("100Mi", size="10Mi", image="oomlab/no-such-image:none")
    with run_operator():
        lab.create("noimage", spec)
        status = lab.wait_phase("noimage", TERMINAL, timeout=60)
    assert status["phase"] == "Failed"
    assert status["kubernetes"]["reason"] == "ErrImageNeverPull"
    assert "imagePullPolicy is Never" in status["message"]


def test_deleting_a_running_experiment_never_hangs(lab: Lab, run_operator: RunOperator) -> None:
    spec = bulk_spec("100Mi", size="20Mi", hold=120)
    with run_operator():
        uid = lab.create("held", spec)["metadata"]["uid"]
        lab.wait_phase("held", {"Running"}, timeout=60)
        assert not (lab.get("held") or {})["metadata"].get("finalizers")
    # With the operator gone, deletion still completes at once: there is no finalizer.
    lab.delete("held")
    wait_for(lambda: lab.get("held") is None, 10, "the experiment to be deleted")
    # and the pod goes with it (ownerReferences: garbage collection)
    wait_for(lambda: not lab.pods(uid), 60, "the pod to be garbage-collected")


def test_thirty_at_once_all_finish_none_lost_none_duplicated(
    lab: Lab, run_operator: RunOperator
) -> None:
    spec = bulk_spec("64Mi", size="20Mi", chunk="10Mi")
    names = [f"many-{i:02d}" for i in range(30)]
    with run_operator():
        uids = {name: lab.create(name, spec)["metadata"]["uid"] for name in names}
        wait_for(
            lambda: all(lab.status(n).get("phase") in TERMINAL for n in names),
            240,
            "all 30 experiments to finish",
            lambda: str(sorted(str(lab.status(n).get("phase")) for n in names)),
        )
    phases = {name: lab.status(name)["phase"] for name in names}
    assert set(phases.values()) == {"Completed"}, phases
    for name, uid in uids.items():
        assert len(lab.pods(uid)) == 1, name


def test_crash_right_after_pod_creation_adopts_the_pod(lab: Lab, namespace: str) -> None:
    """SIGKILL (no graceful stop) as soon as the pod exists, then a fresh operator process."""
    spec = bulk_spec("200Mi", size="50Mi", hold=3)
    command = [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", namespace,
               "-m", "oomlab.operator.handlers"]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        uid = lab.create("crash", spec)["metadata"]["uid"]
        wait_for(lambda: lab.pods(uid), 60, "the pod to be created")
    finally:
        first.kill()
        first.wait(timeout=30)
    second = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status = lab.wait_phase("crash", TERMINAL, timeout=90)
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert status["phase"] == "Completed", status
    assert len(lab.pods(uid)) == 1
    assert condition(status, "PodCreated")["status"] == "True"
