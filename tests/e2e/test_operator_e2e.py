"""The operator, deployed with ``kubectl apply -k manifests/``, on a real cluster whose kubelet's
runtime is OOM-killed by the kernel. Every claim of the operator issue, observed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cluster import (
    OPERATOR_DEPLOYMENT,
    OPERATOR_NAMESPACE,
    SAMPLES,
    Namespace,
    experiment,
    kubectl,
    runtime_classes,
    sample,
    small_spec,
)

from lab import wait_for

MiB = 2**20


def test_seed_oom_is_oom_killed_below_its_limit(ns: Namespace) -> None:
    status = ns.run(sample("seed-oom"))
    kube = status["kubernetes"]
    assert status["phase"] == "OOMKilled", status
    assert kube["outcome"] == "OOMKilled"
    assert kube["exitCode"] == 137
    assert kube["reason"] in ("OOMKilled", "OOMKilledByEvidence")
    assert 0 < kube["allocatedBytes"] < 500 * MiB
    assert kube["qosClass"] == "Guaranteed"
    assert kube["podName"] and kube["nodeName"]
    # Docker with --memory=500m --memory-swap=500m is OOM-killed too: predicted at once.
    assert status["docker"]["predictedOutcome"] == "OOMKilled"
    assert status["parity"]["result"] == "Match"
    assert len(ns.pods_of("seed-oom")) == 1


def test_streaming_completes_under_the_same_limit(ns: Namespace) -> None:
    status = ns.run(sample("streaming"))
    assert status["phase"] == "Completed", status
    assert status["kubernetes"]["exitCode"] == 0
    assert status["kubernetes"]["outcome"] == "Completed"


def test_seed_swap_mismatch_is_explained_after_oomlab_parity(ns: Namespace) -> None:
    status = ns.run(sample("seed-swap"))
    kube = status["kubernetes"]
    assert status["phase"] == "OOMKilled", status
    assert kube["qosClass"] == "Burstable"
    no_swap_node = kube["swapBehavior"] == "NoSwap" or kube["cgroupVersion"] == "v1"
    if no_swap_node:
        # this project's machines: cgroup v1, NoSwap. The workload saw memsw == memory.
        assert kube["predictedSwapBytes"] == 0
        assert kube.get("swapLimitBytes") == 0
    else:
        # LimitedSwap (kind on a cgroup v2 runner): a small share, far below Docker's 524 MiB
        assert 0 <= kube["predictedSwapBytes"] < 500 * MiB
    # the Docker side, observed on this host's engine through the kit
    proc = ns.oomlab_parity("seed-swap", timeout=300)
    assert proc.returncode == 0, proc.stderr
    status = ns.status("seed-swap")
    observed = status["docker"]["observed"]
    assert observed["outcome"] == "Completed"
    assert observed["exitCode"] == 0
    assert status["docker"]["source"] == "Observed"
    assert status["parity"]["result"] == "Mismatch"
    explanation = status["parity"]["explanation"]
    expected = ("NoSwap", "cgroup v1") if no_swap_node else ("LimitedSwap",)
    assert any(word in explanation for word in expected), explanation


def test_events_and_printer_columns(ns: Namespace) -> None:
    ns.apply(experiment("columns", small_spec()))
    ns.wait_terminal("columns")
    reasons = {event.reason for event in ns.events_of("columns")}
    assert reasons, "no Kubernetes events on the experiment"
    table = kubectl("get", "oomx", "-n", ns.name).stdout
    header = table.splitlines()[0].split()
    assert header[:6] == ["NAME", "PHASE", "OUTCOME", "DOCKER", "PARITY", "NODE"]
    assert "Completed" in table.splitlines()[1]


def test_operator_restart_mid_run_keeps_one_pod_and_the_result(ns: Namespace) -> None:
    spec = small_spec(workload={"mode": "bulk", "size": "16Mi", "hold": 20})
    ns.apply(experiment("restart", spec))
    ns.wait_for("restart", lambda s: s.get("phase") == "Running", timeout=120)
    kubectl("-n", OPERATOR_NAMESPACE, "delete", "pod", "-l", "app.kubernetes.io/component=operator",
            "--wait=true")  # fmt: skip
    kubectl("-n", OPERATOR_NAMESPACE, "rollout", "status", f"deployment/{OPERATOR_DEPLOYMENT}",
            "--timeout=180s")  # fmt: skip
    status = ns.wait_terminal("restart", timeout=180)
    assert status["phase"] == "Completed", status
    assert len(ns.pods_of("restart")) == 1


def test_thirty_at_once_none_lost_none_duplicated(ns: Namespace) -> None:
    names = [f"burst-{i:02d}" for i in range(30)]
    spec = small_spec(
        workload={"mode": "bulk", "size": "8Mi"}, resources={"limits": {"memory": "48Mi"}}
    )
    # created and waited for by the runner: one watch for all thirty
    statuses = ns.run_all([experiment(name, spec) for name in names], timeout=600)
    for name, status in zip(names, statuses, strict=True):
        assert status["phase"] == "Completed", (name, status)
        assert len(ns.pods_of(name)) == 1, name


def test_over_cap_lands_in_invalid_with_a_sentence(ns: Namespace) -> None:
    body = sample("invalid/over-cap")
    name = body["metadata"]["name"]
    status = ns.run(body, timeout=60)
    assert status["phase"] == "Invalid"
    assert "cap" in status["message"]
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False"
    assert ns.pods_of(name) == []


def test_nonexistent_runtime_class_lands_in_invalid_naming_the_ones_that_exist(
    ns: Namespace,
) -> None:
    status = ns.run(experiment("no-such-runtime", small_spec(runtimeClassName="kata")), timeout=60)
    assert status["phase"] == "Invalid"
    assert status["message"].startswith(
        "spec.runtimeClassName: RuntimeClass 'kata' does not exist in this cluster ("
    )
    existing = runtime_classes()
    if existing:
        assert f"(the ones that do are {', '.join(existing)})" in status["message"]
    else:
        assert "(this cluster has none)" in status["message"]
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "RuntimeClassNotFound")
    assert ns.pods_of("no-such-runtime") == []


def test_runc_class_runs_and_the_status_and_printer_column_name_its_handler(
    ns: Namespace,
) -> None:
    if "runc" not in runtime_classes():
        pytest.skip("allowed skip: this cluster has no RuntimeClass runc (kind; the local one has)")
    status = ns.run(experiment("runc-class", small_spec(runtimeClassName="runc")), timeout=120)
    assert status["phase"] == "Completed", status
    assert status["kubernetes"]["runtimeClassName"] == "runc"
    assert status["kubernetes"]["runtimeHandler"] == "runc"
    table = kubectl("get", "oomx", "runc-class", "-n", ns.name).stdout.splitlines()
    # Empty columns (no Docker flags, no swapBehavior) print as blanks, so count from the end:
    # RUNTIME is the last column before AGE.
    assert table[0].split()[-2:] == ["RUNTIME", "AGE"]
    assert table[1].split()[-2] == "runc"


def test_missing_image_with_pull_never_fails_with_its_reason(ns: Namespace) -> None:
    spec = small_spec()
    spec["workload"]["image"] = "oomlab/does-not-exist:dev"
    status = ns.run(experiment("no-image", spec), timeout=120)
    assert status["phase"] == "Failed"
    assert status["kubernetes"]["reason"] == "ErrImageNeverPull"


def test_timeout_marks_timed_out_and_removes_the_pod(ns: Namespace) -> None:
    spec = small_spec(workload={"mode": "bulk", "size": "8Mi", "hold": 300}, timeoutSeconds=8)
    status = ns.run(experiment("slow", spec), timeout=120)
    assert status["phase"] == "TimedOut"
    wait_for(lambda: ns.pods_of("slow") == [], 60, "the timed-out pod to be removed")


def test_deleting_the_experiment_removes_its_pod(ns: Namespace) -> None:
    spec = small_spec(workload={"mode": "bulk", "size": "8Mi", "hold": 300})
    ns.apply(experiment("gone", spec))
    ns.wait_for("gone", lambda s: s.get("phase") == "Running", timeout=120)
    pod = ns.pods_of("gone")[0].metadata.name
    ns.delete("gone")

    def gone() -> bool:
        pods = {p.metadata.name for p in ns.core.list_namespaced_pod(ns.name).items}
        return pod not in pods and ns.get("gone") is None

    wait_for(gone, 90, f"pod {pod} and the experiment to be gone after the deletion")


# The samples `kubectl apply -k manifests/samples/` creates: every one finishes on any cluster. The
# LimitedSwap seeds next to them need a LimitedSwap node: tests/e2e/test_limited_swap.py runs them.
EXPERIMENT_SAMPLES = [
    SAMPLES / resource
    for resource in yaml.safe_load((SAMPLES / "kustomization.yaml").read_text())["resources"]
]


@pytest.mark.parametrize("path", EXPERIMENT_SAMPLES, ids=lambda p: Path(p).stem)
def test_every_sample_reaches_a_terminal_phase(ns: Namespace, path: Path) -> None:
    status = ns.run(sample(path.stem), timeout=240)
    assert status["phase"] in ("Completed", "OOMKilled"), status
