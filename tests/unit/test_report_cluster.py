"""The cluster's columns of ``oomlab report``: the Docker -> Kubernetes mapping, reading the
operator's status into cells, which columns a cluster can run, the table lines and findings, and
groups of columns on different machines running at the same time."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from oomlab.cli import cluster_cells as cc
from oomlab.cli import report as rep
from oomlab.cli import report_cluster as rc
from oomlab.cli import report_findings as judged
from oomlab.cli import report_model as model
from oomlab.cli import report_render as render
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.semantics import SwapBehavior, kernel_limit, limited_swap_bytes

MiB = 2**20
# The VM node as measured (README: capacity 1,531,916,288 B, swap 2,147,479,552 B).
VM_FACTS = NodeFacts("oomlab-vm", 1_531_916_288, 2_147_479_552, SwapBehavior.LIMITED_SWAP)
SCENARIOS = {s.key: s for s in model.SCENARIOS}
UNLIMITED = model.Scenario("unlimited", "unlimited swap (500m/-1)", model.SEED, "500m", "-1")
NOSWAP, LIMITED_RUNC, LIMITED_CRUN = cc.CLUSTER_COLUMNS


def node(name: str, labels: dict[str, str], *, ready: bool = True, taint: bool = False) -> Any:
    doc: dict[str, Any] = {
        "metadata": {"name": name, "labels": labels},
        "status": {
            "capacity": {"memory": "1496012Ki"},
            "nodeInfo": {"swap": {"capacity": 2_147_479_552}},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
    if taint:
        doc["spec"] = {"taints": [{"key": "oomlab.dev/swap", "effect": "NoSchedule"}]}
    return doc


HOST_NODE = node("oomlab-node", {"oomlab.dev/cgroup-version": "v1"})
VM_NODE = node(
    "oomlab-vm",
    {"oomlab.dev/swap-behavior": "LimitedSwap", "oomlab.dev/cgroup-version": "v2"},
    taint=True,
)
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
RUNC = yaml.safe_load((MANIFESTS / "cluster" / "runtimeclasses.yaml").read_text())
CRUN = yaml.safe_load((MANIFESTS / "cluster" / "vm-runtimeclasses.yaml").read_text())


# -- mapping -------------------------------------------------------------------------------------


def test_no_swap_is_guaranteed_at_the_same_limit() -> None:
    mapping = cc.kubernetes_equivalent(SCENARIOS["no-swap"], VM_FACTS)
    assert (mapping.qos, mapping.request, mapping.limit) == ("Guaranteed", "500Mi", "500Mi")
    assert mapping.limited_swap_bytes == 0
    assert mapping.text() == "Guaranteed 500Mi/500Mi"
    streaming = cc.kubernetes_equivalent(SCENARIOS["streaming"], VM_FACTS)
    assert streaming.text() == "Guaranteed 500Mi/500Mi"


def test_swap_is_the_smallest_burstable_request_giving_at_least_dockers_swap() -> None:
    mapping = cc.kubernetes_equivalent(SCENARIOS["swap"], VM_FACTS)
    docker_swap = 1024 * MiB - 500 * MiB  # --memory-swap=1g minus --memory=500m
    assert (mapping.qos, mapping.limit) == ("Burstable", "500Mi")
    request = int(mapping.request.removesuffix("Mi")) * MiB
    memory, swap = 1_531_916_288, 2_147_479_552
    assert limited_swap_bytes(request, memory, swap) >= docker_swap
    assert limited_swap_bytes(request - MiB, memory, swap) < docker_swap
    assert mapping.request == "374Mi"
    assert mapping.limited_swap_bytes == kernel_limit(limited_swap_bytes(request, memory, swap))
    assert "524 MiB of swap" in mapping.why and "374Mi" in mapping.why


def test_swap_unset_is_docker_twice_memory_so_swap_equal_to_memory() -> None:
    mapping = cc.kubernetes_equivalent(SCENARIOS["swap-unset"], VM_FACTS)
    assert mapping.qos == "Burstable"
    request = int(mapping.request.removesuffix("Mi")) * MiB
    assert limited_swap_bytes(request, 1_531_916_288, 2_147_479_552) >= 500 * MiB
    assert mapping.request == "357Mi"


def test_reaccess_is_run_by_the_operator_as_its_flags_map() -> None:
    mapping = cc.kubernetes_equivalent(SCENARIOS["reaccess"], VM_FACTS)
    assert not mapping.not_run
    assert mapping == cc.kubernetes_equivalent(SCENARIOS["swap"], VM_FACTS)
    assert mapping.text() == "Burstable 374Mi/500Mi"


def test_unlimited_docker_swap_has_no_kubelet_equivalent() -> None:
    mapping = cc.kubernetes_equivalent(UNLIMITED, VM_FACTS)
    assert "unlimited Docker swap has no kubelet equivalent" in mapping.not_run
    assert mapping.text().startswith("not run: ")


def test_without_a_limited_swap_node_the_samples_request_is_used_and_said() -> None:
    mapping = cc.kubernetes_equivalent(SCENARIOS["swap"], None)
    assert mapping.request == "400Mi"
    assert "no LimitedSwap node to size the request from" in mapping.why


def test_swap_no_burstable_request_can_give_is_not_run() -> None:
    huge = model.Scenario("big", "big", model.SEED, "500m", "4g")
    mapping = cc.kubernetes_equivalent(huge, VM_FACTS)
    assert "not below the limit" in mapping.not_run


# -- cells ---------------------------------------------------------------------------------------


def status(
    predicted: str | None, outcome: str | None, *, exit_code: int = 0, **extra: Any
) -> dict[str, Any]:
    k8s = {"predictedOutcome": predicted, "outcome": outcome, "exitCode": exit_code, **extra}
    return {"status": {"phase": outcome or "Running", "kubernetes": k8s, "message": "msg."}}


def cell(column: cc.ClusterColumn, key: str, body: dict[str, Any]) -> cc.ClusterCell:
    scenario = SCENARIOS[key]
    return cc.ClusterCell(column, scenario, cc.kubernetes_equivalent(scenario, VM_FACTS), body=body)


def test_cell_reads_prediction_and_outcome_from_the_status() -> None:
    killed = cell(NOSWAP, "no-swap", status("OOMKilled", "OOMKilled", exit_code=137,
                                             reason="OOMKilled"))  # fmt: skip
    assert (killed.agrees, killed.text()) == (True, "OOMKilled, 137 ✓")
    assert killed.oom_reported_as() == "terminated.reason=OOMKilled"
    wrong = cell(LIMITED_RUNC, "swap", status("Completed", "OOMKilled", exit_code=137))
    assert wrong.agrees is False
    assert wrong.text() == "**OOMKilled, 137** ✗ (predicted Completed)"
    assert "judged by evidence" in wrong.oom_reported_as()
    close = cell(LIMITED_RUNC, "swap-unset", status("Borderline", "OOMKilled", exit_code=137))
    assert close.agrees is None and "too close to call" in close.text()
    running = cell(LIMITED_RUNC, "swap", status("Completed", None))
    assert running.text() == "not finished: phase Running"
    skipped = cc.ClusterCell(LIMITED_RUNC, SCENARIOS["swap"], cc.KubeMapping("-", "-", "-", ""),
                             error="too slow")  # fmt: skip
    assert skipped.text() == "not run: too slow" and skipped.agrees is None


def test_swap_text_says_whether_the_kernel_set_the_predicted_limit() -> None:
    same = cell(LIMITED_CRUN, "swap", status("Completed", "Completed", swapLimitBytes=549_761_024,
                                             predictedSwapBytes=549_761_024,
                                             swapLimitAgrees=True))  # fmt: skip
    assert same.swap_text() == "549,761,024 B = predicted"
    body = status("Completed", "Completed", swapLimitBytes=0, predictedSwapBytes=5,
                  swapLimitAgrees=False)  # fmt: skip
    other = cell(LIMITED_CRUN, "swap", body)
    assert other.swap_text() == "0 B != 5"


# -- reachability --------------------------------------------------------------------------------


def test_every_column_reachable_on_the_local_cluster() -> None:
    assert cc.column_reachability([HOST_NODE, VM_NODE], [RUNC, CRUN]) == {}


def test_without_the_vm_node_its_columns_say_why() -> None:
    down = node("oomlab-vm", VM_NODE["metadata"]["labels"], ready=False, taint=True)
    why = cc.column_reachability([HOST_NODE, down], [RUNC, CRUN])
    assert set(why) == {LIMITED_RUNC.label, LIMITED_CRUN.label}
    assert "no Ready node runs LimitedSwap" in why[LIMITED_RUNC.label]
    assert "hack/vm-node.sh up" in why[LIMITED_RUNC.label]


def test_a_missing_runtime_class_is_the_operators_sentence() -> None:
    why = cc.column_reachability([HOST_NODE, VM_NODE], [RUNC])
    assert set(why) == {LIMITED_CRUN.label}
    assert "RuntimeClass 'crun' does not exist" in why[LIMITED_CRUN.label]


def test_limited_swap_node_facts_come_from_the_ready_labelled_node() -> None:
    facts = cc.limited_swap_node([HOST_NODE, VM_NODE])
    assert facts is not None and facts.name == "oomlab-vm"
    assert facts.swap_capacity_bytes == 2_147_479_552
    assert cc.limited_swap_node([HOST_NODE]) is None


OLD_VM_NODE = node(
    "oomlab-vm-134",
    {"oomlab.dev/swap-behavior": "LimitedSwap", "oomlab.dev/cgroup-version": "v2",
     "oomlab.dev/kubelet-version": "v1.34.4"},
    taint=True,
)  # fmt: skip
OLD_VM_NODE["spec"]["taints"].append(
    {"key": "oomlab.dev/kubelet-version", "value": "v1.34.4", "effect": "NoSchedule"}
)
OLD_VM_NODE["status"]["nodeInfo"]["kubeletVersion"] = "v1.34.4"


def test_a_node_tainted_for_its_kubelet_adds_a_column_pinned_to_that_version() -> None:
    assert cc.cluster_columns([HOST_NODE, VM_NODE]) == cc.CLUSTER_COLUMNS
    columns = cc.cluster_columns([HOST_NODE, VM_NODE, OLD_VM_NODE])
    (old,) = columns[len(cc.CLUSTER_COLUMNS) :]
    assert (old.label, old.kubelet_version, old.runtime_class) == (
        "kubelet LimitedSwap v2 runc v1.34.4", "v1.34.4", "runc",
    )  # fmt: skip
    assert old.machine not in {c.machine for c in cc.CLUSTER_COLUMNS}  # runs beside them
    placement = old.placement()
    assert placement is not None
    assert placement.node_selector == {"oomlab.dev/kubelet-version": "v1.34.4"}
    assert LIMITED_RUNC.placement() is None
    assert cc.column_reachability([HOST_NODE, VM_NODE, OLD_VM_NODE], [RUNC, CRUN], columns) == {}
    # a tainted node that is not Ready adds no column
    down = {**OLD_VM_NODE, "status": {**OLD_VM_NODE["status"], "conditions": []}}
    assert cc.cluster_columns([HOST_NODE, VM_NODE, down]) == cc.CLUSTER_COLUMNS


def test_the_ordinary_limited_swap_columns_need_an_untainted_node() -> None:
    columns = cc.cluster_columns([HOST_NODE, OLD_VM_NODE])
    why = cc.column_reachability([HOST_NODE, OLD_VM_NODE], [RUNC, CRUN], columns)
    assert set(why) == {LIMITED_RUNC.label, LIMITED_CRUN.label}
    assert cc.limited_swap_node([HOST_NODE, OLD_VM_NODE]) is None
    facts = cc.limited_swap_node([OLD_VM_NODE, VM_NODE])
    assert facts is not None and facts.name == "oomlab-vm"


def test_the_version_column_is_a_row_of_the_table_naming_its_kubelet() -> None:
    old = cc.cluster_columns([HOST_NODE, VM_NODE, OLD_VM_NODE])[-1]
    part = cluster_part()
    part.columns = (*cc.CLUSTER_COLUMNS, old)
    scenario = SCENARIOS["swap"]
    body = status("Completed", "Completed", exit_code=0, nodeName="oomlab-vm-134",
                  kubeletVersion="v1.34.4", cgroupVersion="v2", swapBehavior="LimitedSwap",
                  runtimeHandler="runc")  # fmt: skip
    part.cells.append(cc.ClusterCell(old, scenario, part.mapping["swap"], body=body))
    lines = render.readme_table(rep.Report(started="now", cluster=part)).splitlines()
    row = next(line for line in lines if line.startswith("| kubelet LimitedSwap v2 runc v1.34.4"))
    assert "node oomlab-vm-134, kubelet v1.34.4" in row and "Completed ✓" in row
    assert len(lines) == 2 + len(part.columns)


# -- the report ----------------------------------------------------------------------------------


def cluster_part(scenarios: tuple[model.Scenario, ...] = model.SCENARIOS) -> cc.ClusterPart:
    part = cc.ClusterPart(mapping={s.key: cc.kubernetes_equivalent(s, VM_FACTS) for s in scenarios})
    outcomes = {"no-swap": "OOMKilled", "swap": "Completed", "swap-unset": "OOMKilled",
                "streaming": "Completed", "reaccess": "Completed"}  # fmt: skip
    for column in cc.CLUSTER_COLUMNS:
        for scenario in scenarios:
            mapping = part.mapping[scenario.key]
            if mapping.not_run:
                part.cells.append(cc.ClusterCell(column, scenario, mapping, error=mapping.not_run))
                continue
            observed = outcomes[scenario.key]
            if column.swap_behavior == SwapBehavior.NO_SWAP and scenario.key in (
                "swap",
                "reaccess",
            ):
                observed = "OOMKilled"
            code = 137 if observed == "OOMKilled" else 0
            body = status(observed, observed, exit_code=code, reason=observed,
                          nodeName="n", cgroupVersion="v2", swapBehavior="LimitedSwap",
                          runtimeHandler=column.runtime_class)  # fmt: skip
            part.cells.append(cc.ClusterCell(column, scenario, mapping, body=body, seconds=9.0))
    return part


def test_cluster_lines_join_the_runtime_table_under_the_same_headings() -> None:
    report = rep.Report(started="now", cluster=cluster_part())
    lines = render.readme_table(report).splitlines()
    assert lines[0].startswith("| runtime | host | no swap (500m/500m) | swap allowed (500m/1g) |")
    crun = next(line for line in lines if line.startswith("| kubelet LimitedSwap v2 crun"))
    assert "runtime handler crun" in crun
    assert "OOMKilled, 137 ✓" in crun and "Completed ✓" in crun
    assert crun.count("Completed ✓") == 3  # swap, streaming and re-access
    assert crun.endswith("| terminated.reason=OOMKilled |")
    assert len(lines) == 2 + len(cc.CLUSTER_COLUMNS)


def test_every_cluster_cell_as_predicted_is_no_finding() -> None:
    assert judged.findings(rep.Report(started="now", cluster=cluster_part())) == []


def test_cluster_findings_name_the_row_no_experiment_can_express_once() -> None:
    report = rep.Report(started="now", cluster=cluster_part((*model.SCENARIOS, UNLIMITED)))
    found = judged.findings(report)
    assert len(found) == 1
    assert "unlimited Docker swap" in found[0]
    assert found[0].startswith("**the cluster's columns**, unlimited swap (500m/-1): not run: ")


def test_a_cluster_disagreement_is_a_finding_with_the_operators_sentences() -> None:
    part = cluster_part()
    index = next(
        i for i, c in enumerate(part.cells)
        if c.column == LIMITED_RUNC and c.scenario.key == "swap"
    )  # fmt: skip
    part.cells[index].body = status("Completed", "OOMKilled", exit_code=137,
                                    explanation="fits in 500 MiB + 524 MiB.")  # fmt: skip
    found = judged.findings(rep.Report(cluster=part))
    (finding,) = [f for f in found if "predicted Completed" in f]
    assert finding.startswith("**kubelet LimitedSwap v2 runc**, swap allowed (500m/1g) "
                              "(Burstable 374Mi/500Mi)")  # fmt: skip
    assert "The rules said: fits in 500 MiB + 524 MiB. What happened: msg." in finding


def test_an_unreachable_cluster_is_one_finding_and_its_lines_say_why() -> None:
    part = cc.ClusterPart(unreachable={"cluster": "no cluster configuration"})
    for column in cc.CLUSTER_COLUMNS:
        nothing = cc.KubeMapping("-", "-", "-", "")
        part.cells.append(
            cc.ClusterCell(column, SCENARIOS["swap"], nothing, error="no cluster configuration")
        )
    report = rep.Report(cluster=part)
    assert judged.findings(report) == ["**cluster** could not be reached: no cluster configuration"]
    table = render.readme_table(report)
    assert table.count("unreachable: no cluster configuration") >= len(cc.CLUSTER_COLUMNS)
    assert "Not reachable: no cluster configuration" in render.render_markdown(report)


def test_markdown_shows_the_mapping_and_every_cluster_cell() -> None:
    text = render.render_markdown(rep.Report(started="now", cluster=cluster_part()))
    assert "| swap allowed (500m/1g) | Burstable 374Mi/500Mi |" in text
    assert "| no swap (500m/500m) | Guaranteed 500Mi/500Mi |" in text
    assert text.count("| kubelet LimitedSwap v2 crun |") == len(model.SCENARIOS)
    assert "The cluster: 15 cells on 3 column(s) through the operator; 15 of 15 decided" in text
    data = render.to_json(rep.Report(cluster=cluster_part()))
    assert data["cluster"]["mapping"]["swap"]["request"] == "374Mi"


# -- groups at the same time ---------------------------------------------------------------------


def test_groups_on_different_machines_run_at_the_same_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """host engines, vm engines and the cluster overlap; engines of one machine do not."""
    running: set[str] = set()
    overlapped: list[set[str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=5)

    def busy(name: str) -> None:
        with lock:
            running.add(name)
        barrier.wait()  # all three groups must be in flight together, or this times out
        with lock:
            overlapped.append(set(running))
        time.sleep(0.01)
        with lock:
            running.discard(name)

    def fake_measure(cols: list[model.Column], scenarios: Any, **_: Any) -> rep.Report:
        machines = {model.machine_of(c.engine) for c in cols}
        assert len(machines) == 1, cols
        busy(machines.pop())
        part = rep.Report(wall_s=1.0)
        part.steps.append(model.Step(f"{cols[0].label}: x", 1.0))
        return part

    def fake_cluster(scenarios: Any, **_: Any) -> cc.ClusterPart:
        busy("cluster")
        return cc.ClusterPart(wall_s=2.0)

    monkeypatch.setattr(rep, "measure", fake_measure)
    monkeypatch.setattr(rc, "measure_cluster", fake_cluster)
    cols = model.columns(["docker", "podman", "docker@vm", "podman@vm"], ["runc", "crun"])
    report = rep.measure_all(cols, cluster=True)
    assert any(len(seen) == 3 for seen in overlapped)
    assert report.groups == {"host engines": 1.0, "vm engines": 1.0, "cluster": 2.0}
    assert report.cluster is not None
    assert judged.largest_group(report) == ("cluster", 2.0)
    assert "ran at the same time" in render.render_markdown(report)


def test_machine_of() -> None:
    assert model.machine_of("docker") == model.machine_of("podman") == "host engines"
    assert model.machine_of("docker@vm") == model.machine_of("podman@vm") == "vm engines"
    assert model.machine_of("docker@unix:///run/other.sock") == "host engines"


def test_cluster_cells_are_drawn_with_the_swap_the_kernel_set(tmp_path: Any) -> None:
    report = rep.Report(started="now", cluster=cluster_part())
    bars = render.cluster_bars(report)
    assert len(bars) == len(report.cluster.cells) if report.cluster else False
    assert not any(b.note for b in bars)
    reaccess = [b for b in bars if "LimitedSwap v2 runc bulk\nBurstable 374Mi" in b.label]
    assert len(reaccess) == 2  # swap and re-access, both as Burstable 374Mi/500Mi
    unlimited = render.cluster_bars(rep.Report(cluster=cluster_part((UNLIMITED,))))
    assert [b.note for b in unlimited] == [
        cc.kubernetes_equivalent(UNLIMITED, VM_FACTS).not_run
    ] * 3
    guaranteed = next(b for b in bars if "Guaranteed" in b.label)
    assert (guaranteed.memory_bytes, guaranteed.swap_bytes) == (500 * MiB, 0)
    written = render.write(report, tmp_path)
    assert (tmp_path / "runtimes.png").stat().st_size > 0
    assert tmp_path / "report.md" in written


@pytest.mark.parametrize(
    ("column", "scenario", "skipped"),
    [
        ("docker@vm/runc", "reaccess", True),
        ("podman@vm/crun", "reaccess", True),
        ("docker/runc", "reaccess", False),
        ("docker@vm/runc", "swap", False),
        ("kubelet LimitedSwap v2 crun", "swap-unset", True),
        ("kubelet NoSwap v1 (runc)", "swap-unset", False),
    ],
)
def test_skip_patterns_are_column_colon_scenario_globs(
    column: str, scenario: str, skipped: bool
) -> None:
    skip = ["*@vm/*:reaccess", "kubelet LimitedSwap*:swap-unset"]
    reason = model.skip_reason(skip, column, scenario)
    assert bool(reason) is skipped
    if skipped:
        assert reason.startswith("skipped to keep the report's wall time in budget (--skip '")


def test_a_skipped_cell_never_reaches_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OOMLAB_ENGINE_VM", raising=False)
    report = rep.measure(model.columns(["docker@vm"], ["runc"]), skip=["*:reaccess"])
    (cell,) = [c for c in report.cells if c.scenario.key == "reaccess"]
    assert cell.row.error.startswith("skipped to keep the report's wall time in budget")
    assert cell.twin is None
    assert "not run: skipped" in cell.row.verdict.text()


@pytest.mark.parametrize(
    ("predicted", "observed", "code", "text"),
    [
        ("OOMKilled", "OOMKilled", 137, "OOMKilled, 137 ✓"),
        ("Completed", "OOMKilled", 137, "**OOMKilled, 137** ✗ (predicted Completed)"),
        ("Borderline", "Completed", 0, "Completed (predicted: too close to call)"),
    ],
)
def test_engine_and_cluster_cells_are_judged_and_written_alike(
    predicted: str, observed: str, code: int, text: str
) -> None:
    from oomlab.cli.container_runs import Row
    from oomlab.rules.results import Outcome, Predicted, RunResult
    from oomlab.rules.semantics import Prediction
    from oomlab.runners import ContainerRun

    scenario = SCENARIOS["swap"]
    run = ContainerRun(scenario.workload, scenario.memory, scenario.memory_swap)
    result = RunResult("docker", Outcome(observed), "why", code)
    row = Row(run, Prediction(Predicted(predicted), 0, None, "rules"), result)
    on_cluster = cell(LIMITED_RUNC, "swap", status(predicted, observed, exit_code=code))
    assert row.agrees == on_cluster.agrees
    assert row.verdict.text() == on_cluster.text() == text


# -- the cells as one OOMSweep (a fake API server and operator) ----------------------------------


class FakeSweepApi:
    """The API server and the operator for the report's sweep: the operator's own rules expand
    the created sweep (oomlab.sweep.plan) and summarize it; every experiment finishes as
    ``finish`` says."""

    def __init__(self, finish: Any, *, leftover: bool = False) -> None:
        self.finish = finish
        self.sweeps: dict[str, dict[str, Any]] = {"oomlab-report": {}} if leftover else {}
        self.calls: list[tuple[str, str]] = []
        self.experiments: list[dict[str, Any]] = []
        self.created: dict[str, Any] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from oomlab import kube
        from oomlab.cli import kube_sweep

        monkeypatch.setattr(rc, "_reach_cluster", lambda: ([HOST_NODE, VM_NODE, OLD_VM_NODE],
                                                           [RUNC, CRUN]))  # fmt: skip
        monkeypatch.setattr(kube_sweep, "create_sweep", self.create)
        monkeypatch.setattr(kube_sweep, "sweep_status", self.status)
        monkeypatch.setattr(kube_sweep, "sweep_exists", lambda _ns, name: name in self.sweeps)
        monkeypatch.setattr(kube_sweep, "delete_sweep", self.delete)
        monkeypatch.setattr(kube, "list_experiments", self.list_experiments)

    def create(self, namespace: str, body: dict[str, Any]) -> None:
        from oomlab.sweep import plan

        name = body["metadata"]["name"]
        assert name not in self.sweeps, "created over a sweep that still exists"
        self.calls.append(("create", name))
        self.sweeps[name] = self.created = body
        planned = plan({**body, "metadata": {**body["metadata"], "namespace": namespace}})
        assert planned.error is None and not planned.invalid
        self.plan = planned
        for doc in planned.documents.values():
            doc["status"] = self.finish(doc["spec"])["status"]
            self.experiments.append(doc)

    def status(self, _namespace: str, name: str) -> dict[str, Any]:
        from oomlab.rules.sweep_status import summarize

        self.polls = getattr(self, "polls", 0) + 1
        assert self.polls < 3, "every experiment finished: the first read says Done"
        by_name = {e["metadata"]["name"]: e for e in self.experiments}
        return summarize(self.plan.cells, by_name, self.plan.invalid).status

    def delete(self, _namespace: str, name: str, *, foreground: bool = False) -> None:
        self.calls.append(("delete-foreground" if foreground else "delete", name))
        self.sweeps.pop(name, None)

    def list_experiments(self, _ns: str, *, label_selector: str) -> tuple[list[Any], str]:
        assert label_selector == "oomlab.dev/sweep=oomlab-report"
        return list(self.experiments), "1"


def finished_as_predicted(spec: dict[str, Any]) -> dict[str, Any]:
    """Burstable pods complete on LimitedSwap, everything else is OOM-killed; the swap limit and
    memory.min/low/high read as predicted."""
    burstable = spec["resources"].get("requests", {}) != spec["resources"]["limits"]
    limited = spec.get("swapBehavior") == "LimitedSwap"
    outcome = "Completed" if spec["workload"]["mode"] == "streaming" or (
        burstable and limited) else "OOMKilled"  # fmt: skip
    node = spec.get("nodeSelector", {}).get("oomlab.dev/kubelet-version", "")
    qos = {
        "enabled": True,
        "observed": {"memoryMin": 0, "memoryLow": 5, "memoryHigh": -1},
        "predicted": {"memoryMin": 0, "memoryLow": 5, "memoryHigh": -1},
        "agrees": True,
    }
    return status(outcome, outcome, exit_code=137 if outcome == "OOMKilled" else 0,
                  nodeName="oomlab-vm-134" if node else "oomlab-vm", swapLimitAgrees=True,
                  memoryQoS=qos, startedAt="2026-12-03T15:00:00Z",
                  finishedAt="2026-12-03T15:00:42Z")  # fmt: skip


def test_the_cluster_columns_are_one_sweep_read_back_into_the_same_cells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = FakeSweepApi(finished_as_predicted, leftover=True)
    api.install(monkeypatch)
    done: list[str] = []
    part = rc.measure_cluster(model.SCENARIOS, image="memhog:x", timeout_s=300, on_done=done.append)
    # a sweep left by a dead report is deleted (and gone) before the new one, which is deleted
    assert api.calls == [("delete-foreground", "oomlab-report"), ("create", "oomlab-report"),
                         ("delete", "oomlab-report")]  # fmt: skip
    # one cell per column x scenario, the kubelet version's column included, none left out
    assert [c.label for c in part.columns][-1] == "kubelet LimitedSwap v2 runc v1.34.4"
    assert len(part.cells) == len(api.plan.cells) == 4 * len(model.SCENARIOS)
    assert all(not c.error for c in part.cells), [c.error for c in part.cells]
    assert all(c.agrees for c in part.cells) and len(done) == len(part.cells)
    # each cell got the experiment the operator ran for its own variant
    for cell in part.cells:
        spec = cell.body["spec"]
        assert spec.get("swapBehavior") == cell.column.swap_behavior.value
        assert spec.get("runtimeClassName") == cell.column.runtime_class
        assert spec["resources"]["limits"]["memory"] == cell.mapping.limit
        assert spec["workload"].get("reaccess", 0) == cell.scenario.workload.reaccess
        assert cell.seconds == 42.0
    old = [c for c in part.cells if c.column.kubelet_version == "v1.34.4"]
    assert {c.k8s["nodeName"] for c in old} == {"oomlab-vm-134"}
    assert {c.body["spec"]["nodeSelector"]["oomlab.dev/kubelet-version"] for c in old} == {
        "v1.34.4"
    }
    # the machines run side by side, one experiment at a time on each
    body = api.sweeps.get("oomlab-report") or {}
    assert not body  # deleted
    kinds = {c.node_kind for c in api.plan.cells}
    assert kinds == {"host", "vm", "vm-v1.34.4"}
    # two at a time on each machine, the longest first: re-access passes, then those that swap
    assert api.created["spec"]["maxRunningPerNodeKind"] == 2
    vm = [c.axes["variants"]["name"] for c in api.plan.cells if c.node_kind == "vm"]
    assert vm == ["limited-runc.reaccess", "limited-crun.reaccess", "limited-runc.swap",
                  "limited-runc.swap-unset", "limited-crun.swap", "limited-crun.swap-unset",
                  "limited-runc.no-swap", "limited-runc.streaming", "limited-crun.no-swap",
                  "limited-crun.streaming"]  # fmt: skip
    host = [c.axes["variants"]["name"] for c in api.plan.cells if c.node_kind == "host"]
    assert host[0] == "noswap-runc.reaccess" and len(host) == len(model.SCENARIOS)
    text = render.render_markdown(rep.Report(started="now", cluster=part))
    assert "memory.swap.max as predicted in 20 of 20 cells" in text
    assert "memory.min/low/high as predicted in 20 of 20 cells" in text
    assert "| 0 / 5 / max = predicted (Memory QoS on) |" in text


def test_a_kept_sweep_has_its_own_name_and_is_not_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeSweepApi(finished_as_predicted)
    api.install(monkeypatch)
    from oomlab import kube

    monkeypatch.setattr(kube, "list_experiments", lambda _ns, **_: (list(api.experiments), "1"))
    part = rc.measure_cluster(model.SCENARIOS[:1], image="memhog:x", timeout_s=60, keep=True)
    ((verb, name),) = api.calls
    assert verb == "create" and name.startswith("oomlab-report-")
    assert api.sweeps[name]["metadata"]["labels"] == {cc.REPORT_LABEL: "kept"}
    assert all(c.agrees for c in part.cells)


def test_ctrl_c_while_the_sweep_runs_deletes_it_and_stops_the_engines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C lands in the main thread: the cluster's wait runs there, so it stops at once and
    the sweep goes; the engines' thread ends the run under way and starts no other."""
    from oomlab.cli import kube_sweep
    from oomlab.cli.container_runs import Row

    api = FakeSweepApi(finished_as_predicted)
    api.install(monkeypatch)
    stops: list[threading.Event] = []
    measure = rep.measure

    def keeping_stop(*args: Any, **kwargs: Any) -> rep.Report:
        stops.append(kwargs["stop"])
        return measure(*args, **kwargs)

    runs: list[str] = []
    running = threading.Event()

    def interrupted(_ns: str, _name: str) -> dict[str, Any]:
        assert threading.current_thread() is threading.main_thread()
        assert running.wait(5), "an engine run is under way"
        raise KeyboardInterrupt

    def one_run(_report: Any, name: str, _runner: Any, run: Any) -> Row:
        runs.append(name)
        running.set()
        assert stops[0].wait(5), "the interrupt reaches the engines' thread"
        return Row(run, None, None, "stopped")

    monkeypatch.setattr(rep, "measure", keeping_stop)
    monkeypatch.setattr(rep, "container_runner", lambda _engine: type("Up", (), {"info": 1})())
    monkeypatch.setattr(rep, "_timed", lambda *_: None)
    monkeypatch.setattr(rep, "_observe", one_run)
    monkeypatch.setattr(kube_sweep, "sweep_status", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rep.measure_all(model.columns(["docker"], ["runc"]), cluster=True)
    assert api.calls == [("create", "oomlab-report"), ("delete", "oomlab-report")]
    assert not api.sweeps
    assert runs == ["docker/runc: no-swap"]


def test_cells_the_sweep_did_not_finish_say_so() -> None:
    from oomlab.cli import report_sweep as rs

    planned = [rs.PlannedCell(cell(LIMITED_RUNC, key, {}), {}) for key in ("swap", "no-swap")]
    row = {"variant": "limited-runc.swap", "experiment": "oomlab-report-000", "phase": "Running"}
    invalid = {"variant": "limited-runc.no-swap", "phase": "Invalid", "message": "too big"}
    body = {"metadata": {"name": "oomlab-report-000"}, **status("Completed", None)}
    running, refused = rs.read_back(planned, {"cells": [row, invalid]}, [body],
                                    finished_waiting=True)  # fmt: skip
    assert running.error == "not finished when the report stopped waiting (phase Running)"
    assert running.name == "oomlab-report-000" and running.predicted == "Completed"
    assert refused.error == "the operator found it invalid: too big"
    assert refused.text() == "not run: the operator found it invalid: too big"


def test_memory_qos_cells_show_read_against_predicted_and_a_miss_is_a_finding() -> None:
    qos = {
        "enabled": False,
        "observed": {"memoryMin": 0, "memoryLow": 0, "memoryHigh": 100},
        "predicted": {"memoryMin": 0, "memoryLow": 0, "memoryHigh": -1},
        "agrees": False,
    }
    part = cluster_part()
    part.cells[5].body["status"]["kubernetes"]["memoryQoS"] = qos
    assert (
        part.cells[5].memory_qos_text() == "0 / 0 / 100 != predicted 0 / 0 / max (Memory QoS off)"
    )
    (found,) = judged.findings(rep.Report(cluster=part))
    assert found.endswith("memory.min / low / high 0 / 0 / 100 != predicted 0 / 0 / max "
                          "(Memory QoS off).")  # fmt: skip
    assert part.cells[0].memory_qos_text() == "-"
