"""The kopf handlers against a fake API (kube.py's functions and the operator's status patch
replaced with unittest.mock).

The fake keeps experiments and pods in dicts, applies JSON merge patches with the resourceVersion
precondition like the API server, and answers 409 for a pod that already exists. What is checked
is what a user would see: pods created, status written, Events posted, nothing raised for a user's
mistake.
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import kopf
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from oomlab import kube
from oomlab.experiment import pod_name
from oomlab.handover import OBSERVATION_ANNOTATION, observation_annotation
from oomlab.operator import api as operator_api
from oomlab.operator import handlers as op
from oomlab.operator import twin_lifecycle
from oomlab.operator.alarms import ExperimentRef
from oomlab.operator.api import as_body
from oomlab.operator.config import OperatorConfig
from oomlab.operator.deadline_actions import deadline_passed
from oomlab.operator.state import MEMO_KEY, OperatorState, node_record, state_of
from oomlab.operator.twin import twin_pod_name
from oomlab.operator.twin_lifecycle import twin_deadline
from oomlab.rules.docker import DockerFlags
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.results import Outcome, RunResult
from oomlab.rules.timestamps import rfc3339

MiB = 2**20
GiB = 2**30
NS = "lab"
UID = "4be0a3e2-8f3a-4d7e-b1a3-6d2f0c9e5a10"
FIXTURES = Path(__file__).parent / "fixtures" / "pods"
SEED_OOM = {
    "workload": {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi", "imagePullPolicy": "Never"},
    "resources": {"requests": {"memory": "500Mi"}, "limits": {"memory": "500Mi"}},
    "docker": {"memory": "500m", "memorySwap": "500m"},
    "timeoutSeconds": 300,
}


SEED_SWAP = {
    **SEED_OOM,
    "resources": {"requests": {"memory": "250Mi"}, "limits": {"memory": "500Mi"}},
    "docker": {"memory": "500m", "memorySwap": "1g"},
}


def merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def api_error(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="error")
    error.body = json.dumps({"kind": "Status", "code": status, "message": message})
    return error


class FakeApi:
    def __init__(self) -> None:
        self.experiments: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[str]] = {}
        self.patches: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.log_reads = 0
        self.fail_next_patch_with: int | None = None
        self.create_error: ApiException | None = None
        self.version = 100
        self.state = OperatorState(
            config=OperatorConfig(max_experiment_bytes=4 * GiB), on_deadline=deadline_passed
        )
        self.memo = kopf.Memo({MEMO_KEY: self.state})

    def add_experiment(self, name: str, spec: dict[str, Any], uid: str = UID) -> dict[str, Any]:
        self.version += 1
        body = {
            "apiVersion": "oomlab.dev/v1alpha1",
            "kind": "OOMExperiment",
            "metadata": {
                "name": name,
                "namespace": NS,
                "uid": uid,
                "generation": 1,
                "resourceVersion": str(self.version),
                "creationTimestamp": rfc3339(datetime.now(UTC)),
            },
            "spec": spec,
        }
        self.experiments[name] = body
        return copy.deepcopy(body)

    # --- kube.py's functions, and the operator's status patch
    def find_experiment(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.experiments.get(name)
        return copy.deepcopy(found) if found else None

    def patch_status(
        self,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        if self.fail_next_patch_with is not None:
            status, self.fail_next_patch_with = self.fail_next_patch_with, None
            self.version += 1
            self.experiments[name]["metadata"]["resourceVersion"] = str(self.version)
            raise api_error(status, "the object has been modified")
        body = self.experiments[name]
        if resource_version is not None and resource_version != body["metadata"]["resourceVersion"]:
            raise api_error(409, "the object has been modified")
        self.patches.append(copy.deepcopy(dict(patch)))
        merge(body.setdefault("status", {}), patch)
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(body)

    def create_pod(self, pod: Mapping[str, Any]) -> dict[str, Any]:
        if self.create_error is not None:
            raise self.create_error
        name = pod["metadata"]["name"]
        if name in self.pods:
            raise api_error(409, f'pods "{name}" already exists')
        self.pods[name] = copy.deepcopy(dict(pod))
        return copy.deepcopy(self.pods[name])

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.pods.get(name))

    def delete_pod(self, namespace: str, name: str, **_: Any) -> bool:
        self.deleted.append(name)
        return self.pods.pop(name, None) is not None

    def read_pod_log_tail(self, namespace: str, name: str, lines: int = 40) -> list[str]:
        self.log_reads += 1
        return self.logs.get(name, [])[-lines:]

    def get_node_facts(self, name: str) -> NodeFacts:
        return NodeFacts(name, 24 * GiB, 2 * GiB)

    runtime_classes: list[dict[str, Any]] | None = None
    nodes: list[dict[str, Any]] | None = None

    def list_runtime_classes(self) -> list[dict[str, Any]] | None:
        return copy.deepcopy(self.runtime_classes)

    node_lists = 0

    def list_nodes(self) -> list[dict[str, Any]] | None:
        self.node_lists += 1
        return copy.deepcopy(self.nodes)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    names = [
        "find_experiment",
        "create_pod",
        "read_pod",
        "delete_pod",
        "read_pod_log_tail",
        "get_node_facts",
        "list_runtime_classes",
        "list_nodes",
    ]
    with (
        mock.patch.multiple(kube, **{name: getattr(fake, name) for name in names}),
        mock.patch.object(operator_api, "patch_status", fake.patch_status),
    ):
        yield fake


@pytest.fixture(autouse=True)
def events() -> Iterator[mock.Mock]:
    """kopf.info / kopf.warn, recorded as (type, reason, message, object name)."""
    recorder = mock.Mock()
    with (
        mock.patch.object(kopf, "info", lambda body, **kw: recorder("Normal", body, **kw)),
        mock.patch.object(kopf, "warn", lambda body, **kw: recorder("Warning", body, **kw)),
    ):
        yield recorder


def posted(recorder: mock.Mock) -> list[tuple[str, str, str]]:
    return [(c.args[0], c.kwargs["reason"], c.kwargs["message"]) for c in recorder.call_args_list]


def start(api: FakeApi, body: dict[str, Any]) -> None:
    asyncio.run(
        op.start_experiment(
            body=as_body(body),
            namespace=NS,
            name=body["metadata"]["name"],
            uid=body["metadata"]["uid"],
            memo=api.memo,
        )
    )


def pod_event(api: FakeApi, pod: dict[str, Any], type_: str = "MODIFIED") -> None:
    asyncio.run(op.pod_event(type=type_, body=as_body(pod), namespace=NS, memo=api.memo))


def fixture_pod(name: str, fake: FakeApi, experiment: str = "seed-oom") -> dict[str, Any]:
    """A fixture's status on top of the pod the operator really created."""
    document = yaml.safe_load((FIXTURES / name).read_text())
    pod = copy.deepcopy(fake.pods[pod_name(experiment, UID)])
    if document["spec"].get("nodeName"):
        pod["spec"]["nodeName"] = document["spec"]["nodeName"]  # the scheduler's doing
    pod["status"] = document["status"]
    return pod


# ---------------------------------------------------------------------------------- create/resume


def test_create_makes_one_owned_pod_and_writes_pending_with_docker_prediction(
    api: FakeApi, events: mock.Mock
) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    assert list(api.pods) == [pod_name("seed-oom", UID)]
    owner = api.pods[pod_name("seed-oom", UID)]["metadata"]["ownerReferences"]
    assert owner == [
        {
            "apiVersion": "oomlab.dev/v1alpha1",
            "kind": "OOMExperiment",
            "name": "seed-oom",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    status = api.experiments["seed-oom"]["status"]
    assert status["phase"] == "Pending"
    assert status["docker"]["predictedOutcome"] == "OOMKilled"
    assert status["kubernetes"]["podName"] == pod_name("seed-oom", UID)
    assert len(api.patches) == 1
    assert posted(events) == [("Normal", "Pending", "New -> Pending: " + status["message"])]


def test_resume_adopts_the_existing_pod_instead_of_duplicating_it(
    api: FakeApi, events: mock.Mock
) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    start(api, api.find_experiment(NS, "seed-oom") or {})
    assert len(api.pods) == 1
    condition = next(
        c for c in api.experiments["seed-oom"]["status"]["conditions"] if c["type"] == "PodCreated"
    )
    assert (condition["status"], condition["reason"]) == ("True", "Adopted")
    assert [e[1] for e in posted(events)] == ["Pending"]  # no second transition


def test_resume_of_a_finished_experiment_does_nothing(api: FakeApi) -> None:
    body = api.add_experiment("seed-oom", SEED_OOM)
    body["status"] = api.experiments["seed-oom"]["status"] = {"phase": "Completed"}
    start(api, body)
    assert api.pods == {}
    assert api.patches == []


def test_invalid_spec_lands_in_invalid_with_a_sentence_and_no_pod(
    api: FakeApi, events: mock.Mock
) -> None:
    too_big = {
        **SEED_OOM,
        "workload": {"mode": "bulk", "size": "6Gi"},
        "resources": {"limits": {"memory": "500Mi"}},
    }
    start(api, api.add_experiment("huge", too_big))
    status = api.experiments["huge"]["status"]
    assert api.pods == {}
    assert status["phase"] == "Invalid"
    assert status["message"].startswith("spec.workload.size: ")
    assert "over this operator's cap of 4 GiB" in status["message"]
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec")
    assert posted(events) == [("Warning", "Invalid", "New -> Invalid: " + status["message"])]


# The local cluster: runc everywhere, crun only on the cgroup v2 LimitedSwap VM node (tainted).
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
RUNC = yaml.safe_load((MANIFESTS / "cluster" / "runtimeclasses.yaml").read_text())
CRUN = yaml.safe_load((MANIFESTS / "cluster" / "vm-runtimeclasses.yaml").read_text())
HOST_NODE = {
    "metadata": {
        "name": "oomlab-node",
        "labels": {"oomlab.dev/swap-behavior": "NoSwap", "oomlab.dev/cgroup-version": "v1"},
    }
}
VM_NODE = {
    "metadata": {
        "name": "oomlab-vm",
        "labels": {"oomlab.dev/swap-behavior": "LimitedSwap", "oomlab.dev/cgroup-version": "v2"},
    },
    "spec": {
        "taints": [{"key": "oomlab.dev/swap", "value": "LimitedSwap", "effect": "NoSchedule"}]
    },
}


@pytest.fixture
def local_cluster(api: FakeApi) -> FakeApi:
    api.runtime_classes = [RUNC, CRUN]
    api.nodes = [HOST_NODE, VM_NODE]
    return api


def test_unknown_runtime_class_is_invalid_naming_the_ones_that_exist(
    local_cluster: FakeApi, events: mock.Mock
) -> None:
    start(
        local_cluster,
        local_cluster.add_experiment("typo", {**SEED_OOM, "runtimeClassName": "crum"}),
    )
    status = local_cluster.experiments["typo"]["status"]
    assert local_cluster.pods == {}
    assert status["phase"] == "Invalid"
    assert status["message"] == (
        "spec.runtimeClassName: RuntimeClass 'crum' does not exist in this cluster (the ones that "
        "do are crun, runc): use one of those, or leave runtimeClassName out to run on the "
        "node's default runtime."
    )
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "RuntimeClassNotFound")
    assert posted(events)[0][:2] == ("Warning", "Invalid")


def test_runtime_class_that_cannot_meet_swap_behavior_is_invalid_with_the_way_out(
    local_cluster: FakeApi,
) -> None:
    spec = {**SEED_OOM, "runtimeClassName": "crun", "swapBehavior": "NoSwap"}
    start(local_cluster, local_cluster.add_experiment("crun-noswap", spec))
    status = local_cluster.experiments["crun-noswap"]["status"]
    assert local_cluster.pods == {}
    assert status["phase"] == "Invalid"
    assert (
        "runs only on nodes with oomlab.dev/cgroup-version=v2: oomlab-vm (LimitedSwap)"
        in (status["message"])
    )
    assert "none of them is a NoSwap node" in status["message"]
    assert "use swapBehavior LimitedSwap, or another runtimeClassName (runc)" in status["message"]


@pytest.mark.parametrize(
    ("runtime_class", "behavior", "handler"),
    [("crun", "LimitedSwap", "crun"), ("runc", "LimitedSwap", "runc"), ("runc", "NoSwap", "runc")],
)
def test_runtime_class_that_fits_runs_and_the_status_names_its_handler(
    local_cluster: FakeApi, runtime_class: str, behavior: str, handler: str
) -> None:
    spec = {**SEED_SWAP, "runtimeClassName": runtime_class, "swapBehavior": behavior}
    start(local_cluster, local_cluster.add_experiment("seed-oom", spec))
    (pod,) = local_cluster.pods.values()
    assert pod["spec"]["runtimeClassName"] == runtime_class
    k8s = local_cluster.experiments["seed-oom"]["status"]["kubernetes"]
    assert (k8s["runtimeClassName"], k8s["runtimeHandler"]) == (runtime_class, handler)


def test_runtime_class_check_reads_the_nodes_from_kopfs_index_not_from_the_api(
    api: FakeApi,
) -> None:
    api.runtime_classes = [RUNC, CRUN]
    api.nodes = []  # a listing would find no node offering crun, so nothing to contradict
    api.state.nodes = {
        node["metadata"]["name"]: [node_record(node)] for node in (HOST_NODE, VM_NODE)
    }
    spec = {**SEED_OOM, "runtimeClassName": "crun", "swapBehavior": "NoSwap"}
    start(api, api.add_experiment("crun-noswap", spec))
    status = api.experiments["crun-noswap"]["status"]
    assert (status["phase"], api.pods) == ("Invalid", {})
    assert "none of them is a NoSwap node" in status["message"]
    assert api.node_lists == 0


def test_without_a_runtime_class_the_status_says_default_and_nothing_is_listed(
    api: FakeApi,
) -> None:
    api.runtime_classes = api.nodes = None  # would fail the check if it were asked
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    k8s = api.experiments["seed-oom"]["status"]["kubernetes"]
    assert k8s["runtimeHandler"] == "default"
    assert "runtimeClassName" not in k8s


def test_runtime_classes_not_listable_leaves_it_to_the_api_server(api: FakeApi) -> None:
    start(api, api.add_experiment("seed-oom", {**SEED_OOM, "runtimeClassName": "crun"}))
    assert len(api.pods) == 1
    assert "runtimeHandler" not in api.experiments["seed-oom"]["status"]["kubernetes"]


def test_quota_refusal_is_invalid_not_an_exception(api: FakeApi, events: mock.Mock) -> None:
    api.create_error = api_error(
        403,
        'pods "x" is forbidden: exceeded quota: mem, requested: limits.memory=500Mi, '
        "used: limits.memory=0, limited: limits.memory=256Mi",
    )
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    status = api.experiments["seed-oom"]["status"]
    assert status["phase"] == "Invalid"
    assert "ResourceQuota" in status["message"]
    assert status["docker"]["predictedOutcome"] == "OOMKilled"
    assert posted(events)[0][:2] == ("Warning", "Invalid")


def test_transient_creation_error_is_retried_by_kopf(api: FakeApi) -> None:
    api.create_error = api_error(500, "etcdserver: request timed out")
    with pytest.raises(kopf.TemporaryError):
        start(api, api.add_experiment("seed-oom", SEED_OOM))
    assert "status" not in api.experiments["seed-oom"]


# ---------------------------------------------------------------------------------- pod events


def test_oomkilled_pod_writes_the_result_once(api: FakeApi, events: mock.Mock) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    pod_event(api, fixture_pod("running.yaml", api))
    oom = fixture_pod("oomkilled.yaml", api)
    pod_event(api, oom)
    status = api.experiments["seed-oom"]["status"]
    assert status["phase"] == "OOMKilled"
    assert status["kubernetes"]["exitCode"] == 137
    assert status["kubernetes"]["allocatedBytes"] == 500 * MiB
    assert status["kubernetes"]["predictedOutcome"] == "OOMKilled"
    assert status["parity"]["result"] == "Match"
    # the termination message had the progress but not the cgroup report of the first line
    assert api.log_reads == 1
    patches = len(api.patches)
    pod_event(api, oom)  # the same event again (a re-list after a restart)
    assert len(api.patches) == patches
    assert [e[:2] for e in posted(events)] == [
        ("Normal", "Pending"),
        ("Normal", "Running"),
        ("Warning", "OOMKilled"),
    ]


def test_completed_pod_progress_comes_from_the_log(api: FakeApi) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    api.logs[pod_name("seed-oom", UID)] = [
        '{"event":"start","elapsed_s":0,"rss_bytes":1,"mode":"bulk","size_bytes":1048576000}',
        '{"event":"summary","status":"completed","allocated_bytes":0,'
        '"processed_bytes":1048576000,"peak_allocated_bytes":1048576000,'
        '"peak_rss_bytes":1060000000,"elapsed_s":1.5,"rss_bytes":9000000}',
    ]
    pod_event(api, fixture_pod("completed.yaml", api))
    status = api.experiments["seed-oom"]["status"]
    assert status["phase"] == "Completed"
    assert api.log_reads == 1
    assert status["kubernetes"]["processedBytes"] == 1048576000
    assert status["kubernetes"]["peakBytes"] == 1060000000


def test_pod_of_another_incarnation_is_ignored(api: FakeApi) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    stale = fixture_pod("oomkilled.yaml", api)
    stale["metadata"]["ownerReferences"][0]["uid"] = "an-older-uid"
    before = len(api.patches)
    pod_event(api, stale)
    assert len(api.patches) == before
    assert api.experiments["seed-oom"]["status"]["phase"] == "Pending"


def test_pod_deleted_before_it_finished_fails_the_experiment(api: FakeApi) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    pod_event(api, fixture_pod("running.yaml", api), type_="DELETED")
    status = api.experiments["seed-oom"]["status"]
    assert status["phase"] == "Failed"
    assert status["kubernetes"]["reason"] == "PodDeleted"


def test_status_conflict_is_retried(api: FakeApi) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    api.fail_next_patch_with = 409
    pod_event(api, fixture_pod("oomkilled.yaml", api))
    assert api.experiments["seed-oom"]["status"]["phase"] == "OOMKilled"


def test_image_never_pull_fails_the_experiment(api: FakeApi, events: mock.Mock) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    pod_event(api, fixture_pod("err-image-never-pull.yaml", api))
    status = api.experiments["seed-oom"]["status"]
    assert status["phase"] == "Failed"
    assert status["kubernetes"]["reason"] == "ErrImageNeverPull"
    assert posted(events)[-1][:2] == ("Warning", "Failed")


# ------------------------------------------------------------------------------- Docker hand-over


def hand_over(api: FakeApi, name: str, text: str) -> None:
    """What `oomlab parity` does: annotate the experiment (then kopf calls the field handler)."""
    api.experiments[name]["metadata"]["annotations"] = {OBSERVATION_ANNOTATION: text}
    body = api.find_experiment(NS, name) or {}
    asyncio.run(op.fold_docker_observation(body=as_body(body), memo=api.memo))


def completed_run(at: datetime) -> str:
    flags = DockerFlags(memory="500m", memory_swap="1g")
    result = RunResult(runner="docker", outcome=Outcome.COMPLETED, reason="completed", exit_code=0)
    return observation_annotation(result, flags, at)


def test_handed_over_run_is_folded_under_the_operators_configuration(api: FakeApi) -> None:
    start(api, api.add_experiment("seed-swap", SEED_SWAP))
    pod_event(api, fixture_pod("oomkilled.yaml", api, "seed-swap"))
    hand_over(api, "seed-swap", completed_run(datetime(2026, 11, 26, 12, 0, tzinfo=UTC)))
    status = api.experiments["seed-swap"]["status"]
    assert status["docker"]["source"] == "Observed"
    assert (status["docker"]["outcome"], status["docker"]["predictedOutcome"]) == (
        "Completed",
        "Completed",
    )
    assert status["parity"]["result"] == "Mismatch"
    # the same hand-over, folded by an operator whose Deployment says the Docker host has no swap
    api.state.config = OperatorConfig(docker_host_swap_bytes=0)
    hand_over(api, "seed-swap", completed_run(datetime(2026, 11, 26, 12, 5, tzinfo=UTC)))
    docker = api.experiments["seed-swap"]["status"]["docker"]
    assert docker["outcome"] == "Completed"
    assert docker["observed"]["recordedAt"] == "2026-11-26T12:05:00Z"
    assert docker["predictedOutcome"] == "OOMKilled"
    assert "host has no swap" in docker["explanation"]
    assert api.experiments["seed-swap"]["status"]["phase"] == "OOMKilled"


def test_kopf_sees_the_hand_over_change_with_the_operators_storages() -> None:
    """kopf calls the field handler only if the annotation is part of the state it compares
    (the diff-base, less its progress annotations); under oomlab.dev/ it would be stripped."""
    from kopf._cogs.structs import diffs

    settings = kopf.OperatorSettings()
    with mock.patch.object(kube, "load_client_config"):
        op.configure(settings=settings, memo=kopf.Memo(), logger=mock.Mock())
    storages = settings.persistence
    field = ("metadata", "annotations", OBSERVATION_ANNOTATION)

    def essence(annotations: dict[str, str]) -> Any:
        body = kopf.Body({"metadata": {"name": "x", "annotations": annotations}, "spec": {}})
        built = storages.diffbase_storage.build(body=body, extra_fields=[field])
        return storages.progress_storage.clear(essence=built)

    marker = {"oomlab.dev/kopf-managed": "yes"}
    before = essence(marker)
    after = essence({**marker, OBSERVATION_ANNOTATION: "{}"})
    assert [change[1] for change in diffs.diff(before, after)] == [("metadata",)]
    handler_fields = [h.field for h in kopf.get_default_registry()._changing._handlers]
    assert field in handler_fields


def test_unreadable_hand_over_is_a_condition_not_a_crash(api: FakeApi, events: mock.Mock) -> None:
    start(api, api.add_experiment("seed-swap", SEED_SWAP))
    hand_over(api, "seed-swap", "{this is not json")
    status = api.experiments["seed-swap"]["status"]
    bad = next(c for c in status["conditions"] if c["type"] == "DockerObserved")
    assert (bad["status"], bad["reason"]) == ("False", "BadObservation")
    assert bad["message"].startswith(f"The {OBSERVATION_ANNOTATION} annotation is not JSON")
    assert status["docker"]["source"] == "Predicted"
    assert status["phase"] == "Pending"


# ---------------------------------------------------------------------------------- deadlines


def test_timeout_marks_timed_out_and_removes_the_pod(api: FakeApi, events: mock.Mock) -> None:
    async def scenario() -> None:
        body = api.add_experiment("slow", {**SEED_OOM, "timeoutSeconds": 1})
        body["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"  # long past
        api.experiments["slow"]["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
        await op.start_experiment(
            body=as_body(body), namespace=NS, name="slow", uid=UID, memo=api.memo
        )
        assert api.state.alarms.pending() == [f"timeout/{UID}"]
        for _ in range(50):
            await asyncio.sleep(0.02)
            if pod_name("slow", UID) in api.deleted:
                break

    asyncio.run(scenario())
    status = api.experiments["slow"]["status"]
    assert status["phase"] == "TimedOut"
    assert "timeout of 1s since the pod was created" in status["message"]
    assert pod_name("slow", UID) in api.deleted
    assert api.pods == {}
    assert posted(events)[-1][:2] == ("Warning", "TimedOut")


def test_ttl_removes_a_finished_pod_and_keeps_the_status(api: FakeApi) -> None:
    async def scenario() -> None:
        body = api.add_experiment("seed-oom", {**SEED_OOM, "ttlSecondsAfterFinished": 0})
        await op.start_experiment(
            body=as_body(body), namespace=NS, name="seed-oom", uid=UID, memo=api.memo
        )
        await op.pod_event(
            type="MODIFIED",
            body=as_body(fixture_pod("oomkilled.yaml", api)),
            namespace=NS,
            memo=api.memo,
        )
        for _ in range(50):
            await asyncio.sleep(0.02)
            if api.deleted:
                break

    asyncio.run(scenario())
    assert api.deleted == [pod_name("seed-oom", UID)]
    assert api.experiments["seed-oom"]["status"]["phase"] == "OOMKilled"


def test_experiment_deletion_drops_alarms_and_the_pod(api: FakeApi) -> None:
    async def scenario() -> None:
        body = api.add_experiment("seed-oom", SEED_OOM)
        await op.start_experiment(
            body=as_body(body), namespace=NS, name="seed-oom", uid=UID, memo=api.memo
        )
        assert api.state.alarms.pending() == [f"timeout/{UID}"]
        await op.experiment_event(
            type="DELETED",
            body=as_body(body),
            namespace=NS,
            name="seed-oom",
            uid=UID,
            memo=api.memo,
        )
        assert api.state.alarms.pending() == []

    asyncio.run(scenario())
    assert api.deleted == [pod_name("seed-oom", UID)]


# ---------------------------------------------------------------------------------- startup, probe


def test_bad_configuration_stops_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OOMLAB_SWAP_BEHAVIOR", "UnlimitedSwap")
    with pytest.raises(kopf.PermanentError, match="OOMLAB_SWAP_BEHAVIOR"):
        op.configure(settings=kopf.OperatorSettings(), memo=kopf.Memo(), logger=mock.Mock())


def test_startup_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OOMLAB_MAX_EXPERIMENT_BYTES", "1Gi")
    settings = kopf.OperatorSettings()
    memo = kopf.Memo()
    with mock.patch.object(kube, "load_client_config"):
        op.configure(settings=settings, memo=memo, logger=mock.Mock())
    assert state_of(memo).config.max_experiment_bytes == GiB
    assert settings.peering.standalone is True
    assert settings.watching.server_timeout is not None
    assert settings.watching.client_timeout is not None
    assert settings.watching.client_timeout > settings.watching.server_timeout
    assert list(settings.watching.label_selectors.values()) == [
        "app.kubernetes.io/name=oomlab-experiment"
    ]


def test_startup_keeps_kopfs_node_index_and_the_deadline_actions() -> None:
    index: dict[str, list[Any]] = {}  # kopf hands startup handlers its (still empty) indices
    memo = kopf.Memo()
    with mock.patch.object(kube, "load_client_config"):
        op.configure(
            settings=kopf.OperatorSettings(), memo=memo, logger=mock.Mock(), nodes_by_name=index
        )
    assert state_of(memo).nodes is index
    assert state_of(memo).on_deadline is deadline_passed


def test_kopf_finds_every_handler_by_importing_the_handlers_module() -> None:
    """``kopf run -m oomlab.operator.handlers`` registers what that import registers (a fresh
    interpreter, so no other test's imports count)."""
    script = (
        "import json, kopf, oomlab.operator.handlers\n"
        "r = kopf.get_default_registry()\n"
        "kinds = ('_activities', '_indexing', '_watching', '_changing')\n"
        "print(json.dumps({k: sorted({str(h.id) for h in getattr(r, k).get_all_handlers()})"
        " for k in kinds}))"
    )
    found = json.loads(subprocess.run([sys.executable, "-c", script], check=True,
                                      capture_output=True, text=True).stdout)  # fmt: skip
    assert found == {
        "_activities": ["configure", "experiments", "give_back_memory", "login_via_client",
                        "serve_metrics", "stop_alarms", "stop_giving_back_memory", "stop_metrics",
                        "widen_api_thread_pool"],
        "_indexing": ["experiments_by_phase", "nodes_by_name"],
        "_watching": ["experiment_event", "experiment_metrics_and_sweep", "node-pressure-deleted",
                      "node-pressure-pods", "pod_event", "sweep_event"],
        "_changing": [f"docker-observation/metadata.annotations.{OBSERVATION_ANNOTATION}",
                      "node-pressure-start", "start_experiment"],
    }  # fmt: skip


def test_probe_counts_experiments_by_phase(api: FakeApi) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    start(api, api.add_experiment("other", SEED_OOM, uid="uid-2"))
    api.experiments["other"]["status"]["phase"] = "OOMKilled"
    index: dict[str, list[str]] = {}  # what kopf keeps from the indexing function's answers
    for body in api.experiments.values():
        keyed = asyncio.run(
            op.experiments_by_phase(status=body["status"], uid=body["metadata"]["uid"])
        )
        for phase, uid in keyed.items():
            index.setdefault(phase, []).append(uid)
    report = asyncio.run(op.experiments_seen(memo=api.memo, experiments_by_phase=index))
    assert report["seen"] == 2
    assert report["byPhase"] == {"Pending": 1, "OOMKilled": 1}


def test_pod_deleted_while_the_operator_was_down_is_not_run_again(
    api: FakeApi, events: mock.Mock
) -> None:
    start(api, api.add_experiment("seed-oom", SEED_OOM))
    api.pods.clear()  # deleted; the DELETED event was missed
    start(api, api.find_experiment(NS, "seed-oom") or {})
    status = api.experiments["seed-oom"]["status"]
    assert api.pods == {}
    assert status["phase"] == "Failed"
    assert status["kubernetes"]["reason"] == "PodDeleted"
    assert posted(events)[-1][:2] == ("Warning", "Failed")


def test_resume_rearms_the_timeout_even_when_the_status_is_unchanged(api: FakeApi) -> None:
    async def scenario() -> list[str]:
        body = api.add_experiment("seed-oom", SEED_OOM)
        await op.start_experiment(
            body=as_body(body), namespace=NS, name="seed-oom", uid=UID, memo=api.memo
        )
        await op.start_experiment(
            body=as_body(api.find_experiment(NS, "seed-oom") or {}),
            namespace=NS, name="seed-oom", uid=UID, memo=api.memo,
        )  # fmt: skip
        api.state.alarms.cancel_all()  # a restart: the old process's alarms are gone
        patches = len(api.patches)
        await op.start_experiment(
            body=as_body(api.find_experiment(NS, "seed-oom") or {}),
            namespace=NS, name="seed-oom", uid=UID, memo=api.memo,
        )  # fmt: skip
        assert len(api.patches) == patches  # nothing to write...
        return api.state.alarms.pending()  # ...but the timeout is armed again

    assert asyncio.run(scenario()) == [f"timeout/{UID}"]


# ---------------------------------------------------------------------------------- swap cost

COST_SPEC = {
    **SEED_SWAP,
    "swapBehavior": "LimitedSwap",
    "measureSwapCost": True,
    "workload": {**SEED_SWAP["workload"], "reaccess": 1},
}


def memhog_log(
    *, allocate_s: float, reaccess_s: float, swap_limit: int, swapped: int, in_swap: int
) -> list[str]:
    """memhog's start and summary lines on cgroup v2 (kernel 6.1: no pswpin in memory.stat, so
    the swap traffic comes from /proc/vmstat)."""
    pages = swapped // 4096

    def line(event: str, vmstat: int, faults: int, at_end: int, **extra: Any) -> str:
        cgroup = {"version": 2, "swap_limit_bytes": swap_limit, "swap_usage_bytes": at_end,
                  "stat": {"pgmajfault": faults}}  # fmt: skip
        counters = {"pswpin": vmstat, "pswpout": vmstat}
        record = {"event": event, "elapsed_s": 0.0, "page_size": 4096, "cgroup": cgroup,
                  "vmstat": counters, "majflt": 0, **extra}  # fmt: skip
        return json.dumps(record)

    return [
        line("start", 100, 0, 0, size_bytes=1000 * MiB),
        line("summary", 100 + pages, pages, in_swap, status="completed", allocated_bytes=1000 * MiB,
             processed_bytes=1000 * MiB, allocate_s=allocate_s, reaccess_s=reaccess_s),
    ]  # fmt: skip


def finished(pod: dict[str, Any], node: str) -> dict[str, Any]:
    """``pod`` as the kubelet reports it after the workload exited 0 on ``node``."""
    done = copy.deepcopy(pod)
    done["spec"]["nodeName"] = node
    document = yaml.safe_load((FIXTURES / "completed.yaml").read_text())
    done["status"] = document["status"]
    return done


def run_to_the_twin(api: FakeApi) -> dict[str, Any]:
    """The experiment completed on the VM node using swap: its status, and the twin exists."""
    start(api, api.add_experiment("cost", COST_SPEC))
    assert api.experiments["cost"]["status"]["swapCost"]["state"] == "Waiting"
    main = pod_name("cost", UID)
    api.logs[main] = memhog_log(
        allocate_s=20.0, reaccess_s=10.5, swap_limit=587_964_416, swapped=600 * MiB,
        in_swap=500 * MiB,
    )  # fmt: skip
    pod_event(api, finished(api.pods[main], "oomlab-vm"))
    status: dict[str, Any] = api.experiments["cost"]["status"]
    return status


def test_completion_with_swap_starts_one_twin_on_the_same_node(
    api: FakeApi, events: mock.Mock, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = run_to_the_twin(api)
    assert status["phase"] == "Completed"
    cost = status["swapCost"]
    twin = twin_pod_name("cost", UID)
    assert cost["state"] == "Measuring"
    assert (cost["workSeconds"], cost["swapInBytes"], cost["swapOutBytes"]) == (
        30.5, 600 * MiB, 600 * MiB)  # fmt: skip
    assert (cost["swapCountScope"], cost["swapBytesAtEnd"]) == ("system", 500 * MiB)
    assert (cost["twinPodName"], cost["twinNodeName"]) == (twin, "oomlab-vm")
    assert cost["twinMemoryBytes"] == 1268 * MiB
    assert sorted(api.pods) == sorted([pod_name("cost", UID), twin])
    pod = api.pods[twin]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == UID
    assert pod["spec"]["containers"][0]["resources"]["requests"]["memory"] == "1268Mi"
    assert posted(events)[-1][:2] == ("Normal", "SwapCostTwinStarted")
    # the same main pod event again, and a restart an hour later: still one twin, nothing
    # rewritten (not even the twin's recorded creation time)
    patches = len(api.patches)
    later = datetime.now(UTC) + timedelta(hours=1)
    monkeypatch.setattr(twin_lifecycle, "_now", lambda: later)
    pod_event(api, finished(api.pods[pod_name("cost", UID)], "oomlab-vm"))
    start(api, api.find_experiment(NS, "cost") or {})
    assert len(api.pods) == 2
    assert len(api.patches) == patches
    assert [e[1] for e in posted(events)].count("SwapCostTwinStarted") == 1


def test_twin_completion_writes_the_ratio_and_the_verdict(api: FakeApi, events: mock.Mock) -> None:
    run_to_the_twin(api)
    twin = twin_pod_name("cost", UID)
    api.logs[twin] = memhog_log(allocate_s=4.0, reaccess_s=1.0, swap_limit=0, swapped=0, in_swap=0)
    pod_event(api, finished(api.pods[twin], "oomlab-vm"))
    cost = api.experiments["cost"]["status"]["swapCost"]
    assert (cost["state"], cost["verdict"], cost["ratio"], cost["summary"]) == (
        "Done", "Costly", 6.1, "6.1x")  # fmt: skip
    assert (cost["workSeconds"], cost["twinWorkSeconds"]) == (30.5, 5.0)
    assert cost["swapInBytes"] == 600 * MiB  # the experiment's, not the twin's zero
    assert cost["message"].startswith("Swap saved it at 6.1 times the cost: 30.50 s vs 5.00 s")
    assert posted(events)[-1] == ("Normal", "SwapCostCostly", cost["message"])
    assert api.experiments["cost"]["status"]["phase"] == "Completed"
    # deleting the experiment removes the twin too
    asyncio.run(
        op.experiment_event(
            type="DELETED", body=as_body(api.experiments["cost"]), namespace=NS,
            name="cost", uid=UID, memo=api.memo,
        )
    )  # fmt: skip
    assert twin in api.deleted and twin not in api.pods


def test_a_no_swap_node_says_no_swap_was_used_and_runs_no_twin(
    api: FakeApi, events: mock.Mock
) -> None:
    spec = {**COST_SPEC, "swapBehavior": "NoSwap"}
    start(api, api.add_experiment("cost", spec))
    main = pod_name("cost", UID)
    api.logs[main] = memhog_log(allocate_s=2.0, reaccess_s=1.0, swap_limit=0, swapped=0, in_swap=0)
    pod_event(api, finished(api.pods[main], "oomlab-node"))
    cost = api.experiments["cost"]["status"]["swapCost"]
    assert (cost["state"], cost["verdict"], cost["summary"]) == ("Done", "NoSwapUsed", "no swap")
    assert cost["message"].startswith("No swap used; no cost to measure")
    assert list(api.pods) == [main]
    assert posted(events)[-1][:2] == ("Normal", "SwapCostNoSwapUsed")


def test_restart_creates_a_twin_that_was_never_made(api: FakeApi) -> None:
    status = run_to_the_twin(api)
    twin = twin_pod_name("cost", UID)
    del api.pods[twin]  # as if the operator died between the status write and the create
    api.experiments["cost"]["status"]["swapCost"] = {
        k: v for k, v in status["swapCost"].items() if not k.startswith("twin")
    }
    start(api, api.find_experiment(NS, "cost") or {})
    assert twin in api.pods
    assert api.experiments["cost"]["status"]["swapCost"]["twinPodName"] == twin


def test_twin_past_its_deadline_is_removed_with_no_baseline(api: FakeApi) -> None:
    run_to_the_twin(api)
    twin = twin_pod_name("cost", UID)
    asyncio.run(twin_deadline(api.state, ExperimentRef(NS, "cost", UID)))
    cost = api.experiments["cost"]["status"]["swapCost"]
    assert (cost["state"], cost["verdict"]) == ("Done", "NoBaseline")
    assert "did not finish within timeoutSeconds (300 s)" in cost["message"]
    assert twin in api.deleted


def test_twin_deleted_before_it_finished_gives_no_baseline(api: FakeApi) -> None:
    run_to_the_twin(api)
    pod = api.pods.pop(twin_pod_name("cost", UID))
    pod_event(api, pod, type_="DELETED")
    cost = api.experiments["cost"]["status"]["swapCost"]
    assert cost["verdict"] == "NoBaseline"
    assert "deleted before it finished" in cost["message"]
