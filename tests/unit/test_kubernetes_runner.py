"""The Kubernetes runner against a fake API: one watch for many experiments, events out of order,
410 Gone and dropped streams, deletions, timeouts, keep vs delete, Ctrl-C, node facts."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Generator, Mapping
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ProtocolError

from oomlab.experiment import ExperimentSpec
from oomlab.rules.results import CgroupVersion, Outcome
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.units import MiB
from oomlab.rules.workload import Mode, WorkloadSpec
from oomlab.runners.base import RUN_LABEL, Runner
from oomlab.runners.kubernetes import (
    ClusterExperiment,
    KubernetesRunner,
    WatchUpdate,
    result_from_body,
)

NS = "lab"
SEED = ExperimentSpec.build(WorkloadSpec(Mode.BULK, 1000 * MiB), limit="500Mi", timeout_s=60)
Event = tuple[str, dict[str, Any]]
Script = Callable[["FakeApi"], list[Event | BaseException]]


class FakeApi:
    """A namespace of experiments with resourceVersions, whose watches play a script: each watch
    call takes the next entry (events, or an exception to raise after them); a watch with
    nothing left lasts its whole timeout on the fake clock."""

    def __init__(self, script: list[Script] | None = None) -> None:
        self.script = list(script or [])
        self.now = 0.0
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = itertools.count(100)
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.lists = 0
        self.watches: list[tuple[str, str | None]] = []
        self.refuse: dict[str, ApiException] = {}
        self.nodes: list[dict[str, Any]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def _stamp(self, body: dict[str, Any]) -> dict[str, Any]:
        body["metadata"]["resourceVersion"] = str(next(self.version))
        self.objects[body["metadata"]["name"]] = body
        return copy.deepcopy(body)

    def create_experiment(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        if name in self.refuse:
            raise self.refuse[name]
        self.created.append(copy.deepcopy(dict(body)))
        stored = copy.deepcopy(dict(body))
        stored["metadata"]["uid"] = f"uid-{name}"
        return self._stamp(stored)

    def delete_experiment(self, namespace: str, name: str) -> bool:
        self.deleted.append(name)
        return self.objects.pop(name, None) is not None

    def list_experiments(
        self, namespace: str, *, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        self.lists += 1
        return [copy.deepcopy(o) for o in self.objects.values()], str(next(self.version))

    def watch_experiments(
        self,
        namespace: str,
        resource_version: str,
        *,
        label_selector: str | None = None,
        timeout_s: int = 60,
    ) -> Generator[Event, None, None]:
        self.watches.append((resource_version, label_selector))
        if not self.script:
            self.now += timeout_s
            return
        for item in self.script.pop(0)(self):
            if isinstance(item, BaseException):
                raise item
            yield item

    def list_nodes(self) -> list[dict[str, Any]] | None:
        return self.nodes

    def read_node(self, name: str) -> dict[str, Any] | None:
        return next((n for n in self.nodes if n["metadata"]["name"] == name), None)

    def operator_unavailable(self) -> str | None:
        return None

    # what the operator does

    def phase(self, name: str, phase: str, **k8s: Any) -> Event:
        body = copy.deepcopy(self.objects[name])
        status = body.setdefault("status", {})
        status["phase"] = phase
        status.setdefault("kubernetes", {}).update(k8s)
        return "MODIFIED", self._stamp(body)

    def remove(self, name: str) -> Event:
        body = self.objects.pop(name)
        return "DELETED", copy.deepcopy(body)


def runner(api: FakeApi, **options: Any) -> KubernetesRunner:
    return KubernetesRunner(NS, api=api, clock=api.clock, sleep=api.sleep, **options)


def batch(*names: str, spec: ExperimentSpec = SEED) -> list[ClusterExperiment]:
    return [ClusterExperiment(name, spec, {"oomlab.dev/matrix": "m1"}) for name in names]


OOM = {"outcome": "OOMKilled", "exitCode": 137, "reason": "OOMKilled", "nodeName": "node-a"}


def test_many_experiments_are_created_from_one_document_writer_and_waited_on_with_one_watch() -> (
    None
):
    api = FakeApi(
        [
            lambda a: [
                a.phase("a", "Running"),
                a.phase("b", "Completed", outcome="Completed", exitCode=0),
                a.phase("a", "OOMKilled", **OOM),
                a.phase("c", "OOMKilled", **OOM),
            ]
        ]
    )
    seen: list[tuple[str, str, int]] = []

    def on_update(update: WatchUpdate) -> None:
        seen.append((update.name, update.phase, update.finished))

    observed = runner(api, on_update=on_update).run_all(batch("a", "b", "c"))
    assert [(o.name, o.result.outcome, o.finished) for o in observed] == [
        ("a", Outcome.OOM_KILLED, True),
        ("b", Outcome.COMPLETED, True),
        ("c", Outcome.OOM_KILLED, True),
    ]
    assert len(api.watches) == 1
    labels = [doc["metadata"]["labels"] for doc in api.created]
    (run,) = {label[RUN_LABEL] for label in labels}
    assert api.watches[0][1] == f"{RUN_LABEL}={run}"
    assert all(label["oomlab.dev/matrix"] == "m1" for label in labels)
    assert [ExperimentSpec.from_spec(doc["spec"]) for doc in api.created] == [SEED] * 3
    listed = [("a", "Pending", 0), ("b", "Pending", 0), ("c", "Pending", 0)]
    watched = [("a", "Running", 0), ("b", "Completed", 1), ("a", "OOMKilled", 2),
               ("c", "OOMKilled", 3)]  # fmt: skip
    assert seen == listed + watched
    assert api.deleted == ["a", "b", "c"]


def test_run_is_the_runner_protocol_for_one_experiment() -> None:
    api = FakeApi([lambda a: [a.phase("seed", "OOMKilled", **OOM)]])
    kube: Runner[ClusterExperiment] = runner(api)
    result = kube.run(ClusterExperiment("seed", SEED))
    assert (result.runner, result.outcome, result.exit_code) == (
        "kubernetes", Outcome.OOM_KILLED, 137,
    )  # fmt: skip
    assert api.deleted == ["seed"]


def test_an_event_older_than_what_was_seen_is_ignored() -> None:
    def late_running(a: FakeApi) -> list[Event | BaseException]:
        running = a.phase("a", "Running")
        b_running = a.phase("b", "Running")
        final = a.phase("a", "OOMKilled", **OOM)
        newest.append(final[1]["metadata"]["resourceVersion"])
        # b's event is older than a's last one, yet the newest news of b: it counts
        return [final, running, b_running]

    def then_b(a: FakeApi) -> list[Event | BaseException]:
        return [a.phase("b", "Completed", outcome="Completed", exitCode=0)]

    newest: list[str] = []
    api = FakeApi([late_running, then_b])
    updates: list[tuple[str, str]] = []
    observed = runner(api, on_update=lambda u: updates.append((u.name, u.phase))).run_all(
        batch("a", "b")
    )
    assert observed[0].status["phase"] == "OOMKilled"
    assert ("a", "Running") not in updates
    assert ("b", "Running") in updates
    # the second watch resumes from the newest version seen, not the last one to arrive
    assert api.watches[1][0] == newest[0]


def test_410_gone_lists_again_and_finds_the_end_there() -> None:
    def expire(a: FakeApi) -> list[Event | BaseException]:
        a.phase("a", "OOMKilled", **OOM)  # happened while the watch was gone
        return [ApiException(status=410, reason="Expired: too old resource version")]

    api = FakeApi([expire])
    (observed,) = runner(api).run_all(batch("a"))
    assert observed.finished and observed.result.outcome == Outcome.OOM_KILLED
    assert api.lists == 2


def test_a_dropped_stream_lists_again() -> None:
    def drop(a: FakeApi) -> list[Event | BaseException]:
        return [a.phase("a", "Running"), ProtocolError("Connection broken")]

    def finish(a: FakeApi) -> list[Event | BaseException]:
        return [a.phase("a", "Completed", outcome="Completed", exitCode=0)]

    api = FakeApi([drop, finish])
    (observed,) = runner(api).run_all(batch("a"))
    assert observed.result.outcome == Outcome.COMPLETED
    assert api.lists == 2


def test_other_api_errors_are_not_swallowed_and_what_was_created_is_removed() -> None:
    api = FakeApi([lambda a: [ApiException(status=403, reason="Forbidden")]])
    with pytest.raises(ApiException):
        runner(api).run_all(batch("a"))
    assert api.deleted == ["a"]


def test_an_experiment_deleted_meanwhile_is_reported_not_waited_for() -> None:
    api = FakeApi(
        [lambda a: [a.phase("a", "Running"), a.remove("a"), a.phase("b", "OOMKilled", **OOM)]]
    )
    gone, other = runner(api).run_all(batch("a", "b"), timeout_s=600)
    assert not gone.finished
    assert gone.problem == "the experiment was deleted before it finished (phase Running)"
    assert gone.result.outcome == Outcome.FAILED
    assert other.result.outcome == Outcome.OOM_KILLED
    assert api.now < 600


def test_a_relist_without_the_experiment_means_it_is_gone() -> None:
    def vanish(a: FakeApi) -> list[Event | BaseException]:
        a.objects.clear()
        return [ApiException(status=410, reason="Expired")]

    api = FakeApi([vanish])
    (observed,) = runner(api).run_all(batch("a"))
    assert "deleted before it finished" in observed.problem


def test_no_end_within_the_wait_is_a_timeout_and_still_cleaned_up() -> None:
    api = FakeApi([lambda a: [a.phase("a", "Running")]])
    (observed,) = runner(api, grace_s=30).run_all(batch("a"))
    assert observed.problem == "no final status within 90 s (phase Running)"
    assert observed.result.outcome == Outcome.TIMED_OUT
    assert api.now >= 90
    assert api.deleted == ["a"]


def test_keep_leaves_the_experiments() -> None:
    api = FakeApi([lambda a: [a.phase("a", "OOMKilled", **OOM)]])
    runner(api, keep=True).run_all(batch("a"))
    assert api.deleted == []
    assert "a" in api.objects


@pytest.mark.parametrize(("keep", "deleted"), [(False, ["a", "b"]), (True, [])])
def test_ctrl_c_removes_what_was_created_unless_kept(keep: bool, deleted: list[str]) -> None:
    def interrupt(update: WatchUpdate) -> None:
        raise KeyboardInterrupt

    api = FakeApi([lambda a: [a.phase("a", "Running")]])
    with pytest.raises(KeyboardInterrupt):
        runner(api, keep=keep, on_update=interrupt).run_all(batch("a", "b"))
    assert api.deleted == deleted


def test_a_refused_create_removes_the_ones_before_it() -> None:
    api = FakeApi()
    api.refuse["b"] = ApiException(status=409, reason="Conflict")
    with pytest.raises(ApiException):
        runner(api).run_all(batch("a", "b"))
    assert api.deleted == ["a"]


def test_swap_cost_is_waited_for_when_asked() -> None:
    spec = ExperimentSpec.build(
        WorkloadSpec(Mode.BULK, 600 * MiB), limit="500Mi", request="400Mi",
        measure_swap_cost=True, timeout_s=60,
    )  # fmt: skip

    def measuring(a: FakeApi) -> list[Event | BaseException]:
        event = a.phase("a", "Completed", outcome="Completed", exitCode=0)
        event[1]["status"]["swapCost"] = {"state": "Measuring"}
        return [event]

    def done(a: FakeApi) -> list[Event | BaseException]:
        kind, body = a.phase("a", "Completed")
        body["status"]["swapCost"] = {"state": "Done", "summary": "6.1x"}
        return [(kind, body)]

    api = FakeApi([measuring, done])
    (observed,) = runner(api).run_all(batch("a", spec=spec))
    assert observed.status["swapCost"]["summary"] == "6.1x"
    assert len(api.watches) == 2
    # without waiting for it, the first terminal phase is the end
    api = FakeApi([measuring, done])
    (observed,) = runner(api, with_swap_cost=False).run_all(batch("a", spec=spec))
    assert observed.status["swapCost"]["state"] == "Measuring"


def test_waiting_on_experiments_created_elsewhere_by_name() -> None:
    api = FakeApi([lambda a: [a.phase("x", "Invalid")]])
    api.create_experiment(NS, SEED.to_document("x"))
    (observed,) = runner(api).wait(["x"], 60)
    assert observed.result.outcome == Outcome.REFUSED
    (missing,) = runner(api).wait(["never-made"], 60)
    assert "deleted before it finished" in missing.problem


def test_result_from_the_operators_status() -> None:
    body = {
        "metadata": {"name": "seed-oom"},
        "status": {
            "phase": "OOMKilled",
            "message": "OOM-killed.",
            "kubernetes": {
                "outcome": "OOMKilled", "exitCode": 137, "reason": "OOMKilledByEvidence",
                "allocatedBytes": 450 * MiB, "peakBytes": 499 * MiB, "durationSeconds": 3.5,
                "nodeName": "oomlab-node", "cgroupVersion": "v1", "swapBehavior": "NoSwap",
                "transparentHugepages": "always", "runtimeHandler": "runc",
                "explanation": "Guaranteed pod; no swap.",
            },
        },
    }  # fmt: skip
    result = result_from_body(body)
    assert (result.runner, result.outcome, result.exit_code) == (
        "kubernetes", Outcome.OOM_KILLED, 137,
    )  # fmt: skip
    assert result.oom_killed is False  # killed, but by evidence: the runtime did not say so
    assert result.reason == "Guaranteed pod; no swap."
    assert (result.progress.allocated_bytes, result.peak_usage_bytes) == (450 * MiB, 499 * MiB)
    assert result.host.hostname == "oomlab-node"
    assert result.host.cgroup_version == CgroupVersion.V1
    assert (result.host.swap_behavior, result.host.transparent_hugepages) == ("NoSwap", "always")
    assert result.runtime == "runc"


def node(name: str, *, labels: dict[str, str], taints: list[dict[str, Any]] | None = None,
         swap: int = 0, ready: bool = True) -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints or []},
        "status": {
            "capacity": {"memory": "1496032Ki"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {
                "kernelVersion": f"6.1.0-{name}",
                "kubeletVersion": "v1.34.4",
                "containerRuntimeVersion": "containerd://1.6.20",
                "swap": {"capacity": swap},
            },
        },
    }


HOST = node("oomlab-node", labels={"oomlab.dev/cgroup-version": "v1", "oomlab.dev/thp": "always"})
VM = node(
    "oomlab-vm",
    labels={"oomlab.dev/swap-behavior": "LimitedSwap", "oomlab.dev/cgroup-version": "v2",
            "oomlab.dev/thp": "madvise"},
    taints=[{"key": "oomlab.dev/swap", "value": "LimitedSwap", "effect": "NoSchedule"}],
    swap=2_147_479_552,
)  # fmt: skip


def test_info_is_the_node_an_experiment_would_land_on() -> None:
    api = FakeApi()
    api.nodes = [HOST, VM, node("down", labels={}, ready=False)]
    kube = runner(api)
    limited = ExperimentSpec.build(
        WorkloadSpec(), limit="500Mi", request="400Mi", swap_behavior=SwapBehavior.LIMITED_SWAP
    )
    info = kube.info(limited)
    assert (info.hostname, info.cgroup_version, info.swap_behavior) == (
        "oomlab-vm", CgroupVersion.V2, "LimitedSwap",
    )  # fmt: skip
    assert (info.swap_total_bytes, info.memory_total_bytes) == (2_147_479_552, 1496032 * 1024)
    assert (info.transparent_hugepages, info.swap_limit_supported) == ("madvise", True)
    assert (info.engine, info.engine_version) == ("kubelet", "v1.34.4")
    assert (info.runtime, info.runtime_version) == ("containerd", "1.6.20")
    # no swap behaviour asked: the tainted LimitedSwap node is out, the down node too
    assert kube.info(SEED).hostname == "oomlab-node"
    assert kube.info(SEED).swap_behavior == "NoSwap"
    assert kube.info(node="oomlab-vm").swap_behavior == "LimitedSwap"


def test_info_over_several_nodes_keeps_what_they_agree_on() -> None:
    api = FakeApi()
    other = node("oomlab-node-2", labels={"oomlab.dev/cgroup-version": "v2"})
    api.nodes = [HOST, other]
    info = runner(api).info()
    assert info.hostname is None and info.cgroup_version == CgroupVersion.UNKNOWN
    assert (info.swap_behavior, info.engine_version) == ("NoSwap", "v1.34.4")


def test_thp_compare_notes_the_container_while_the_pod_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oomlab import kube
    from oomlab.cli import thp

    def finish(a: FakeApi) -> list[Event | BaseException]:
        name = next(iter(a.objects))
        return [
            a.phase(name, "Pending", podName="oomx-pending"),
            a.phase(name, "Running", podName="oomx-running", allocatedBytes=200 * MiB),
            a.phase(name, "OOMKilled", **OOM),
        ]

    api = FakeApi([finish])
    pods = {
        "oomx-pending": {"status": {"containerStatuses": [{"name": "workload"}]}},
        "oomx-running": {"status": {"containerStatuses": [{"containerID": "containerd://c0ffee"}]}},
    }  # fmt: skip
    for name in ("create_experiment", "delete_experiment", "list_experiments", "watch_experiments"):
        monkeypatch.setattr(kube, name, getattr(api, name))
    monkeypatch.setattr(kube, "read_pod", lambda namespace, name: pods.get(name))
    said: list[str] = []
    run = thp.experiment_runner(
        NS, "oomlab-vm", "120000", request="400Mi", limit="500Mi", size_bytes=700 * MiB,
        timeout_s=60, progress=said.append,
    )  # fmt: skip
    body, container = run("always")
    assert container == "c0ffee"
    assert body["status"]["phase"] == "OOMKilled"
    assert "THP always: thp-120000-always Running, 200 MiB allocated" in said
    (document,) = api.created
    spec = ExperimentSpec.from_spec(document["spec"])
    assert spec.node_selector == {"kubernetes.io/hostname": "oomlab-vm"}
    assert spec.swap_behavior == SwapBehavior.LIMITED_SWAP
    assert (spec.workload.size_bytes, spec.request_text) == (700 * MiB, "400Mi")
    assert document["metadata"]["labels"]["oomlab.dev/thp-compare"] == "120000"
    assert api.deleted == []  # kept for kubectl, as the command says


class StreamedResponse:
    """What the client's watch reads: JSON lines, as urllib3 streams them."""

    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.status = 200
        self.lines = lines
        self.closed = False

    def stream(self, amt: int | None = None, decode_content: bool = False) -> Any:
        import json

        for line in self.lines:
            yield (json.dumps(line) + "\n").encode()

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


def test_the_kube_watch_passes_events_on_and_raises_410_as_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oomlab import kube

    body = {"metadata": {"name": "a", "resourceVersion": "7"}, "status": {"phase": "Running"}}
    gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    response = StreamedResponse(
        [{"type": "MODIFIED", "object": body}, {"type": "ERROR", "object": gone}]
    )
    asked: dict[str, Any] = {}

    class Custom:
        def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> StreamedResponse:
            asked.update(kwargs, args=args)
            return response

    monkeypatch.setattr(kube, "_custom", Custom)
    events = kube.watch_experiments(NS, "5", label_selector="oomlab.dev/run=r", timeout_s=30)
    assert next(events) == ("MODIFIED", body)
    with pytest.raises(ApiException) as caught:
        next(events)
    assert caught.value.status == 410
    assert response.closed
    assert asked["args"] == ("oomlab.dev", "v1alpha1", NS, "oomexperiments")
    assert (asked["resource_version"], asked["label_selector"], asked["watch"]) == (
        "5", "oomlab.dev/run=r", True,
    )  # fmt: skip
    assert asked["timeout_seconds"] == 30 and asked["_request_timeout"] > 30
