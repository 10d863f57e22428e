"""status.nodePressure's parts from what the operator reads: thresholds, samples, conditions,
bystander pods and records, and the prediction for the VM node."""

from __future__ import annotations

from oomlab.experiment import ExperimentSpec
from oomlab.operator import pressure_view as view
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.pressure import NodeOutcome
from oomlab.rules.results import CgroupVersion, Progress
from oomlab.rules.semantics import SwapBehavior

MiB = 2**20
VM = NodeFacts(
    name="oomlab-vm",
    memory_capacity_bytes=1_531_936_768,
    swap_capacity_bytes=2_147_479_552,
    swap_behavior=SwapBehavior.LIMITED_SWAP,
    cgroup_version=CgroupVersion.V2,
)


def spec(bystanders: list[dict[str, str]] | None = None) -> ExperimentSpec:
    return ExperimentSpec.from_spec(
        {
            "workload": {"mode": "leak", "size": "1300Mi", "step": "10Mi", "interval": 0.5},
            "resources": {"requests": {"memory": "400Mi"}},
            "swapBehavior": "LimitedSwap",
            "timeoutSeconds": 600,
            "nodePressure": {"fill": "1300Mi", "bystanders": bystanders or []},
        }
    )


def test_thresholds_prefer_configz_then_label_then_default() -> None:
    configz = {
        "kubeletconfig": {
            "evictionHard": {"memory.available": "200Mi"},
            "systemReserved": {"memory": "32Mi"},
            "kubeReserved": {"memory": "32Mi"},
        }
    }
    assert view.thresholds_from(configz, {}).to_status() == {
        "memoryAvailable": "200Mi",
        "reservedMemory": "64Mi",
        "source": "configz",
    }
    labelled = view.thresholds_from(None, {"oomlab.dev/eviction-hard-memory": "150Mi"})
    assert (labelled.eviction_hard_bytes, labelled.source) == (150 * MiB, "label")
    assert view.thresholds_from({}, {}).eviction_hard_bytes == 100 * MiB


def test_the_reclaim_point_comes_from_the_node_label_whatever_the_threshold_source() -> None:
    labels = {"oomlab.dev/reclaim-memory-available": "160Mi"}
    configz = {"kubeletconfig": {"evictionHard": {"memory.available": "100Mi"}}}
    for config in (configz, None):
        thresholds = view.thresholds_from(config, labels)
        assert thresholds.reclaim_available_bytes == 160 * MiB
        assert thresholds.to_status()["reclaimPoint"] == "160Mi"
    assert "reclaimPoint" not in view.thresholds_from(None, {}).to_status()


def test_a_summary_sample() -> None:
    sample = view.sample_from_summary(
        {
            "node": {
                "memory": {"time": "T1", "availableBytes": 90 * MiB, "workingSetBytes": 1300 * MiB},
                "swap": {"swapUsageBytes": 10 * MiB, "swapAvailableBytes": 2000 * MiB},
            }
        }
    )
    assert sample.to_status() == {
        "source": "kubelet",
        "at": "T1",
        "memoryAvailableBytes": 90 * MiB,
        "nodeSwapUsedBytes": 10 * MiB,
        "nodeSwapFreeBytes": 2000 * MiB,
    }
    later = view.sample_from_summary({"node": {"memory": {"time": "2026-12-03T12:00:09Z"}}})
    early = view.sample_from_summary({"node": {"memory": {"time": "2026-12-03T12:00:01Z"}}})
    assert view.sample_before([early, later], "2026-12-03T12:00:05Z") is early
    assert view.sample_before([early, later], None) is later
    assert view.sample_before([], None) is None


def test_pressure_times_from_sampled_conditions() -> None:
    false_before = {"status": "False", "lastTransitionTime": "T0"}
    true = {"status": "True", "lastTransitionTime": "T1"}
    false_after = {"status": "False", "lastTransitionTime": "T2"}
    samples = [("a", false_before), ("b", true), ("c", true), ("d", None), ("e", false_after)]
    assert view.pressure_times(samples) == {"since": "T1", "until": "T2"}
    assert view.pressure_times([("a", false_before)]) == {"since": None, "until": None}


def test_bystanders_by_qos_on_the_workloads_node() -> None:
    pods = view.bystander_pods(
        "np",
        "lab",
        "uid-1",
        spec(
            [
                {"qos": "BestEffort", "size": "200Mi"},
                {"qos": "Burstable", "size": "200Mi"},
                {"qos": "Guaranteed", "size": "100Mi"},
            ]
        ),
        "oomlab-vm",
    )
    resources = [p["spec"]["containers"][0]["resources"] for p in pods]
    assert resources[0] == {}
    assert resources[1] == {"requests": {"memory": str(100 * MiB)}}
    assert resources[2]["requests"] == resources[2]["limits"]
    assert all(p["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "oomlab-vm"} for p in pods)
    assert all(view.is_bystander(p) for p in pods)
    assert pods[0]["metadata"]["name"] == view.bystander_pod_name("np", "uid-1", 0)
    assert pods[0]["spec"]["containers"][0]["args"][:3] == ["bulk", "--size", "200Mi"]
    assert "--hold" in pods[0]["spec"]["containers"][0]["args"]


def test_bystander_records_and_observed_order() -> None:
    evicted_late = {
        "metadata": {"name": "b"},
        "status": {
            "phase": "Failed",
            "reason": "Evicted",
            "qosClass": "BestEffort",
            "conditions": [
                {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": "T9"}
            ],
        },
    }
    evicted_early = {
        "metadata": {"name": "a"},
        "status": {
            "phase": "Failed",
            "reason": "Evicted",
            "containerStatuses": [{"state": {"terminated": {"finishedAt": "T3"}}}],
        },
    }
    running = {"metadata": {"name": "c"}, "status": {"phase": "Running"}}
    records = [view.bystander_record(p) for p in (evicted_late, evicted_early, running)]
    assert records[0]["endedAt"] == "T9" and records[2]["endedAt"] is None
    assert view.observed_order(records) == ["a", "b"]


def test_prediction_for_the_vm_node() -> None:
    run = view.predict_for(
        spec([{"qos": "BestEffort", "size": "200Mi"}]),
        VM,
        view.thresholds_from(None, {}),
        350 * MiB,
        ["bystander-0"],
    )
    assert run.prediction.outcome == NodeOutcome.EVICTED
    assert "which does not count swap" in run.prediction.explanation
    # The workload is far more over its request than the bystander is over zero.
    assert run.order == ("workload", "bystander-0") and run.evicted_first == ()


def test_prediction_for_the_vm_node_with_its_reclaim_point() -> None:
    # The node's kernel swaps from memory.available 160 MiB: 1300Mi fits above that plus the
    # 561 MiB share, so the kubelet never sees pressure (as observed live on 2026-12-03).
    thresholds = view.thresholds_from(None, {"oomlab.dev/reclaim-memory-available": "160Mi"})
    run = view.predict_for(spec(), VM, thresholds, 180 * MiB, [])
    assert run.prediction.outcome == NodeOutcome.COMPLETED_IN_SWAP


def test_without_node_samples_the_workloads_swap_bounds_the_free_swap() -> None:
    progress = Progress(lines=3, cgroup={"swap_usage_bytes": 500 * MiB})
    assert view.workload_swap_view(progress, VM) == {
        "source": "workload",
        "workloadSwapBytes": 500 * MiB,
        "nodeSwapFreeBytes": 2_147_479_552 - 500 * MiB,
    }
    assert view.workload_swap_view(None, VM) == {"source": "workload", "workloadSwapBytes": None}
    peak_only = Progress(lines=3, cgroup={"swap_usage_bytes": None, "swap_peak_bytes": 7 * MiB})
    assert view.workload_swap_bytes(peak_only) == 7 * MiB
    assert view.workload_swap_bytes(Progress(lines=3, cgroup={})) is None


def test_bystanders_run_with_the_workloads_least_privilege() -> None:
    experiment = spec([{"qos": "Burstable", "size": "200Mi"}])
    (pod,) = view.bystander_pods("np", "lab", "uid-1", experiment, "oomlab-vm")
    pod_spec = pod["spec"]
    container = pod_spec["containers"][0]
    assert pod_spec["restartPolicy"] == "Never"
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["enableServiceLinks"] is False
    assert pod_spec["activeDeadlineSeconds"] == experiment.timeout_s
    assert pod_spec["terminationGracePeriodSeconds"] == 5
    assert pod_spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["name"] == "workload"
    assert container["image"] == experiment.image
    assert container["env"] == [{"name": "PYTHONUNBUFFERED", "value": "1"}]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert "terminationMessagePolicy" not in container


def test_the_docker_view_of_the_fill() -> None:
    thresholds = view.thresholds_from(None, {"oomlab.dev/reclaim-memory-available": "180Mi"})
    docker = view.docker_for(spec(), VM, thresholds, 126 * MiB)
    assert docker["flags"] == "(no --memory)"
    assert docker["hostSwapBytes"] == 2_147_479_552
    assert docker["predictedOutcome"] == "CompletedInSwap"
    assert "the container may use it all" in docker["explanation"]
