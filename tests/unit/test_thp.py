"""The THP comparison's pure parts: the helper pod and its script, sizing from node facts, the
end-of-run state, rows, explanation and report section, and that the node is always restored."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from oomlab import kube
from oomlab.cli import thp_compare as thp
from oomlab.cli import thp_helper as helper
from oomlab.operator import handlers as op
from oomlab.operator.api import as_body
from oomlab.operator.state import NodeRecord, OperatorState, node_facts
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.units import MiB

# The VM node as measured (README): capacity.memory and nodeInfo.swap.capacity.
VM_NODE = NodeFacts("oomlab-vm", 1_531_916_288, 2_147_479_552)
CONTAINER = "0f1e2d3c4b5a"
SCOPE = (
    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_ab.slice/"
    f"cri-containerd-{CONTAINER}.scope"
)


# --- the helper pod ------------------------------------------------------------------------


def test_helper_pod_is_pinned_privileged_and_tolerates_the_swap_taint() -> None:
    pod = helper.helper_pod(
        "h", "default", "oomlab-vm", image="img", set_mode="always", sample=True,
        labels={thp.COMPARE_LABEL: "s"},
    )  # fmt: skip
    spec = pod["spec"]
    container = spec["containers"][0]
    assert spec["nodeName"] == "oomlab-vm"
    assert spec["restartPolicy"] == "Never"
    assert {"key": "oomlab.dev/swap", "operator": "Exists"} in spec["tolerations"]
    assert container["securityContext"]["privileged"] is True
    assert container["args"] == ["always", "-1"]
    paths = {v["hostPath"]["path"] for v in spec["volumes"]}
    assert paths == {"/sys/kernel/mm/transparent_hugepage", "/sys/fs/cgroup"}
    assert pod["metadata"]["labels"][thp.COMPARE_LABEL] == "s"
    # not the operator's experiment pods: its pod watch must not pick helpers up
    assert pod["metadata"]["labels"].get("app.kubernetes.io/name") != "oomlab-experiment"


def test_one_shot_helper_writes_only_thp_and_does_not_sample() -> None:
    pod = helper.helper_pod("h", "ns", "n", image="i", set_mode="madvise", sample=False, labels={})
    assert pod["spec"]["containers"][0]["args"] == ["madvise", "0"]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["thp"]


def fake_node(root: Path, stat: str) -> None:
    (root / "thp").mkdir(parents=True)
    (root / "thp" / "enabled").write_text("always [madvise] never\n")
    scope = root / "cgroup" / SCOPE
    scope.mkdir(parents=True)
    (scope / "memory.stat").write_text(stat)
    (scope / "memory.current").write_text("524288000\n")
    (scope / "memory.swap.current").write_text("587964416\n")
    (scope / "memory.swap.max").write_text("587964416\n")
    besteffort = root / "cgroup" / "kubepods.slice" / "kubepods-besteffort.slice" / "x.scope"
    besteffort.mkdir(parents=True)
    (besteffort / "memory.stat").write_text("anon 1\n")
    (root / "meminfo").write_text(
        "MemTotal: 1000 kB\nSwapCached:  150000 kB\nAnonHugePages: 2048 kB\n"
    )


def run_script(root: Path, mode: str, samples: int) -> list[str]:
    env = {"HELPER_ROOT": str(root), "HELPER_MEMINFO": str(root / "meminfo"), "PATH": "/usr/bin"}
    done = subprocess.run(
        [sys.executable, "-c", helper.HELPER_SCRIPT, mode, str(samples)],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.splitlines()


def test_helper_script_writes_the_mode_and_samples_burstable_containers(tmp_path: Path) -> None:
    fake_node(tmp_path, "anon 100\nanon_thp 301989888\nswapcached 162529280\nfile 4096\n")
    lines = run_script(tmp_path, "always", 1)
    # a regular file is not sysfs: it now holds only what was written
    assert (tmp_path / "thp" / "enabled").read_text() == "always"
    log = helper.parse_helper_log(lines)
    assert (log.before, log.after) == ("madvise", "always")
    assert [n.swap_cached_bytes for n in log.nodes] == [150000 * 1024]
    assert [c.path for c in log.cgroups] == [SCOPE]  # the BestEffort cgroup is left out
    end = helper.end_state(log, CONTAINER)
    assert end is not None
    assert end.swap_cached_bytes == 162529280
    assert end.anon_thp_bytes == 301989888
    assert (end.memory_bytes, end.swap_bytes, end.swap_max_bytes) == (
        524288000,
        587964416,
        587964416,
    )
    assert end.node_swap_cached_bytes == 150000 * 1024
    assert end.swap_at_cache_peak_bytes == 587964416
    assert end.thp_seen == "always"


def test_helper_script_only_reads_with_a_dash(tmp_path: Path) -> None:
    fake_node(tmp_path, "anon 1\n")
    lines = run_script(tmp_path, "-", 0)
    assert lines == ["before madvise", "after madvise"]


# --- parsing and the end of a run ----------------------------------------------------------


def test_parse_skips_lines_it_does_not_know_and_unlimited_swap_is_none() -> None:
    log = helper.parse_helper_log(
        [
            "before madvise",
            "garbage",
            "node t=oops thp=always",
            "after always",
            "node t=10.0 thp=always | SwapCached:  4 kB | AnonHugePages: 0 kB",
            f"cg t=10.0 path={SCOPE} memory.current=5 memory.swap.max=max swapcached=7",
            f"cg t=11.0 path={SCOPE} memory.current=9 memory.swap.current=3 swapcached=2",
            f"cg t=11.5 path={SCOPE} memory.current=1 memory.swap.current=0 swapcached=0",
            "cg t=11.0 path=kubepods.slice/other.scope memory.current=1",
            "cg t=12.0 path=kubepods.slice/x memory.cur",  # torn last line
        ]
    )
    assert (log.before, log.after, len(log.nodes), len(log.cgroups)) == ("madvise", "always", 1, 5)
    assert (log.nodes[0].swap_cached_bytes, log.nodes[0].anon_huge_bytes) == (4096, 0)
    end = helper.end_state(log, CONTAINER)
    assert end is not None
    assert (end.memory_bytes, end.swap_bytes, end.swap_cached_bytes) == (9, 3, 2)
    assert end.peak_swap_cached_bytes == 7
    assert end.swap_max_bytes is None  # not in the peak sample
    assert end.samples == 3


def test_a_container_never_sampled_has_no_end_state() -> None:
    log = helper.parse_helper_log([f"cg t=1.0 path={SCOPE} memory.current=5"])
    assert helper.end_state(log, "ffff") is None
    assert helper.end_state(log, None) is None


# --- sizing from node facts ----------------------------------------------------------------


def test_sizing_needs_swap_and_fits_in_limit_plus_the_limited_swap_share() -> None:
    size = thp.sizing(400 * MiB, 500 * MiB, VM_NODE, 0.75)
    assert size.swap_share_bytes == 587_964_416  # the README's observed memory.swap.max
    assert size.size_bytes % MiB == 0
    assert 500 * MiB < size.demand_bytes <= 500 * MiB + size.swap_share_bytes
    assert size.demand_bytes <= 500 * MiB + 0.75 * size.swap_share_bytes
    assert size.demand_bytes > 500 * MiB + 0.75 * size.swap_share_bytes - MiB


@pytest.mark.parametrize("fill", [0.0, 1.0, -0.5, 1.5])
def test_sizing_refuses_a_fill_that_does_not_need_swap_or_does_not_fit(fill: float) -> None:
    with pytest.raises(thp.ThpError, match="swap-fill"):
        thp.sizing(400 * MiB, 500 * MiB, VM_NODE, fill)


def test_sizing_refuses_a_node_without_swap() -> None:
    with pytest.raises(thp.ThpError, match="no memory or swap capacity"):
        thp.sizing(400 * MiB, 500 * MiB, NodeFacts("n", 2 * 1024 * MiB, 0))


# --- runs, findings, rendering -------------------------------------------------------------

SIZE = thp.sizing(400 * MiB, 500 * MiB, VM_NODE)


def experiment(
    mode: str,
    phase: str,
    predicted: str,
    *,
    thp_mode: str | None = None,
    exit_code: int | None = None,
    allocated: int | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": f"thp-1-{mode}"},
        "status": {
            "phase": phase,
            "kubernetes": {
                "predictedOutcome": predicted,
                "explanation": f"because {mode}",
                "transparentHugepages": thp_mode or mode,
                "exitCode": exit_code,
                "allocatedBytes": allocated,
                "swapLimitBytes": 587_964_416,
                "predictedSwapBytes": 587_964_416,
            },
        },
    }


END = helper.EndState(
    memory_bytes=524_000_000, swap_bytes=587_964_416, swap_max_bytes=587_964_416,
    swap_cached_bytes=162 * MiB, anon_thp_bytes=288 * MiB, node_swap_cached_bytes=170 * MiB,
    peak_swap_cached_bytes=170 * MiB, peak_swap_bytes=587_964_416, samples=20, thp_seen="always",
)  # fmt: skip
MADVISE_END = helper.EndState(
    memory_bytes=520_000_000, swap_bytes=400 * MiB, swap_max_bytes=587_964_416,
    swap_cached_bytes=3 * MiB, anon_thp_bytes=0, node_swap_cached_bytes=4 * MiB,
    peak_swap_cached_bytes=5 * MiB, peak_swap_bytes=400 * MiB, samples=25, thp_seen="madvise",
)  # fmt: skip


def comparison(*runs: thp.ThpRun) -> thp.Comparison:
    return thp.Comparison("oomlab-vm", SIZE, runs, "madvise", "Restored.")


def test_always_killed_madvise_completed_is_explained_with_the_swap_cache() -> None:
    always = thp.run_from_experiment(
        "always", experiment("always", "OOMKilled", "Borderline", exit_code=137,
                             allocated=600 * MiB), END)  # fmt: skip
    madvise = thp.run_from_experiment(
        "madvise", experiment("madvise", "Completed", "Completed", exit_code=0), MADVISE_END
    )
    both = comparison(always, madvise)
    assert (always.verdict, madvise.verdict) == ("borderline", "agrees")
    assert thp.findings(both) == []
    text = thp.explanation(both)
    assert "OOM-killed under THP always after allocating 600 MiB" in text
    assert "162 MiB of swapped pages still sat in the swap cache" in text
    assert "under madvise the swap cache at the peak was 3 MiB" in text
    rows = thp.table_rows(both)
    assert rows[0][:3] == ["always", "Borderline", "OOMKilled, exit 137 after allocating 600 MiB"]
    assert rows[0][3] == "561 MiB (= predicted)"
    assert rows[0][4] == "500 MiB / 561 MiB / 162 MiB / 288 MiB"
    assert rows[0][5] == "170 MiB (?)"  # the swap then was not recorded in this fixture


def test_a_disagreement_and_a_stale_operator_mode_are_findings() -> None:
    madvise = thp.run_from_experiment(
        "madvise",
        experiment("madvise", "OOMKilled", "Completed", thp_mode="always", allocated=700 * MiB),
        None,
    )
    found = thp.findings(comparison(madvise))
    assert found[0].startswith("THP madvise: the operator predicted with THP 'always'")
    assert found[1] == (
        "THP madvise: predicted Completed, observed OOMKilled after allocating 700 MiB. "
        "because madvise"
    )
    assert thp.table_rows(comparison(madvise))[0][4] == "not sampled"


def test_both_completed_says_thp_did_not_change_the_outcome() -> None:
    runs = [
        thp.run_from_experiment(m, experiment(m, "Completed", p), e)
        for m, p, e in (("always", "Borderline", END), ("madvise", "Completed", MADVISE_END))
    ]
    text = thp.explanation(comparison(*runs))
    assert text.startswith("Both modes ended Completed")
    assert "peaked at always 170 MiB, madvise 5 MiB" in text


def test_report_section_has_the_table_the_explanation_findings_and_the_method() -> None:
    always = thp.run_from_experiment("always", experiment("always", "Completed", "Completed"), END)
    section = thp.report_section(comparison(always))
    lines = section.splitlines()
    assert lines[0] == "## Transparent hugepages"
    assert "| THP | predicted (operator) | observed |" in section
    assert any(line.startswith("| always | Completed | Completed |") for line in lines)
    assert "Only always: Completed ran." in section
    assert "Findings" not in section
    assert "sampled every second from the node" in section and "Restored." in section
    data = thp.to_json(comparison(always))
    assert data["runs"][0]["verdict"] == "agrees"
    assert data["sizing"]["swap_share_bytes"] == 587_964_416
    assert thp.from_json(json.loads(json.dumps(data))) == comparison(always)


# --- switching and restoring ---------------------------------------------------------------


class FakeNode:
    """A node whose THP mode the helper pods change; records what happened."""

    def __init__(self, mode: str = "madvise", label: str | None = "madvise") -> None:
        self.mode = mode
        self.label = label
        self.live_helpers: set[str] = set()
        self.calls: list[str] = []
        self.fail_start_on: str | None = None
        self.fail_write = False
        self.read_back: str | None = None

    def read_label(self) -> str | None:
        return self.label

    def set_label(self, value: str | None) -> None:
        self.calls.append(f"label {value}")
        self.label = value

    def start_helper(self, mode: str) -> thp.Helper:
        self.calls.append(f"helper {mode}")
        if self.fail_start_on == mode:
            raise thp.ThpError("helper pod failed")
        before, self.mode = self.mode, mode
        self.live_helpers.add(mode)
        return thp.Helper(mode, before, self.read_back or mode)

    def finish_helper(self, helper: thp.Helper) -> list[str]:
        self.live_helpers.discard(helper.name)
        return [f"cg t=1.0 path={SCOPE}-{helper.name} memory.current=5 swapcached=1"]

    def write_mode(self, mode: str) -> str | None:
        self.calls.append(f"write {mode}")
        if self.fail_write:
            raise kube.NotFound("node gone")
        self.mode = mode
        return mode


def runner(fail_on: str | None = None) -> thp.RunExperiment:
    def run(mode: str) -> tuple[Mapping[str, Any], str | None]:
        if mode == fail_on:
            raise KeyboardInterrupt
        return experiment(mode, "Completed", "Completed"), f"{CONTAINER}.scope-{mode}"

    return run


def test_compare_switches_each_mode_and_restores_label_without_rewriting_madvise() -> None:
    node = FakeNode()
    result = thp.compare(node, runner(), node="oomlab-vm", size=SIZE)
    assert [r.mode for r in result.runs] == ["always", "madvise"]
    assert node.calls == ["helper always", "label always", "helper madvise", "label madvise",
                          "label madvise"]  # fmt: skip
    assert (node.mode, node.label, node.live_helpers) == ("madvise", "madvise", set())
    assert result.original_mode == "madvise"
    assert result.runs[0].end is not None and result.runs[0].end.swap_cached_bytes == 1
    assert "restored to 'madvise'" in result.restored


def test_an_interrupted_run_still_restores_mode_and_label() -> None:
    node = FakeNode()
    with pytest.raises(KeyboardInterrupt):
        thp.compare(node, runner(fail_on="always"), node="oomlab-vm", size=SIZE)
    assert node.calls[-2:] == ["write madvise", "label madvise"]
    assert (node.mode, node.label, node.live_helpers) == ("madvise", "madvise", set())


def test_an_unlabelled_node_gets_its_label_removed_again() -> None:
    node = FakeNode(mode="always", label=None)
    result = thp.compare(node, runner(), node="n", size=SIZE)
    assert (node.mode, node.label) == ("always", None)
    assert node.calls[-2:] == ["write always", "label None"]
    assert "label to removed" in result.restored


def test_a_mode_that_does_not_read_back_stops_and_restores() -> None:
    node = FakeNode()
    node.read_back = "never"
    with pytest.raises(thp.ThpError, match="read back 'never'"):
        thp.compare(node, runner(), node="n", size=SIZE)
    assert node.calls == ["helper always", "write madvise", "label madvise"]


def test_without_a_helper_line_the_label_is_the_mode_to_restore() -> None:
    node = FakeNode(mode="madvise", label="madvise")
    node.fail_start_on = "always"
    with pytest.raises(thp.ThpError, match="helper pod failed"):
        thp.compare(node, runner(), node="n", size=SIZE)
    assert node.calls == ["helper always", "write madvise", "label madvise"]


def test_a_failed_restore_is_loud_and_keeps_the_first_failure() -> None:
    node = FakeNode()
    node.fail_write = True
    with pytest.raises(thp.ThpRestoreError, match="THP may still be 'always'") as caught:
        thp.compare(node, runner(fail_on="always"), node="oomlab-vm", size=SIZE)
    assert isinstance(caught.value.__cause__, kube.NotFound)
    assert isinstance(caught.value.__cause__.__context__, KeyboardInterrupt)


def test_an_unknown_original_mode_cannot_be_guessed() -> None:
    node = FakeNode(label=None)
    node.fail_start_on = "always"
    with pytest.raises(thp.ThpRestoreError, match="before the comparison is unknown"):
        thp.compare(node, runner(), node="n", size=SIZE)


# --- the operator sees a label switch at once ----------------------------------------------


def test_the_operator_predicts_with_the_node_as_its_last_event_left_it() -> None:
    """The node index's value is recomputed from each Node event, so a THP switch is used at
    once, without asking the API."""
    node = {
        "metadata": {"name": "oomlab-vm", "labels": {"oomlab.dev/thp": "madvise"}},
        "status": {"capacity": {"memory": "1531916288"}, "nodeInfo": {"swap": {"capacity": 2}}},
    }
    index: dict[str, list[NodeRecord]] = {}  # what kopf keeps from the indexing function

    def node_event(document: dict[str, Any]) -> None:
        keyed = asyncio.run(op.nodes_by_name(name="oomlab-vm", body=as_body(document)))
        for name, record in keyed.items():
            index[name] = [record]

    state = OperatorState(nodes=index)
    node_event(node)
    switched = {**node, "metadata": {**node["metadata"], "labels": {"oomlab.dev/thp": "always"}}}
    node_event(switched)
    with mock.patch.object(kube, "get_node_facts", side_effect=AssertionError("no API call")):
        facts = asyncio.run(node_facts(state, "oomlab-vm"))
    assert facts is not None and facts.thp == "always"
    assert facts.memory_capacity_bytes == 1_531_916_288


def test_a_node_the_index_does_not_hold_is_read_from_the_api() -> None:
    state = OperatorState()
    with mock.patch.object(kube, "get_node_facts", return_value=VM_NODE) as read:
        assert asyncio.run(node_facts(state, "oomlab-vm")) == VM_NODE
    read.assert_called_once_with("oomlab-vm")


# --- the command's errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--request", "500Mi"], "--request must be below --limit"),
        (["--limit", "500m"], "--limit"),
    ],
)
def test_thp_compare_refuses_bad_sizes_in_one_line_before_touching_the_cluster(
    args: list[str], says: str
) -> None:
    from typer.testing import CliRunner

    from oomlab.cli.main import app

    with mock.patch.object(
        kube, "list_nodes_matching", side_effect=AssertionError("no cluster call")
    ):
        result = CliRunner().invoke(app, ["thp-compare", *args])
    assert result.exit_code == 2
    assert says in result.output
    assert "Traceback" not in result.output


# --- the cluster side: every helper pod is deleted -----------------------------------------


class FakePods:
    def __init__(self, phase: str, log: list[str]) -> None:
        self.phase, self.log = phase, log
        self.pods: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []

    def create_pod(self, pod: Mapping[str, Any]) -> dict[str, Any]:
        self.created.append(dict(pod))
        self.pods[pod["metadata"]["name"]] = {**pod, "status": {"phase": self.phase}}
        return self.pods[pod["metadata"]["name"]]

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pods.get(name)

    def read_pod_log_tail(self, namespace: str, name: str, lines: int = 40) -> list[str]:
        return self.log

    def delete_pod(self, namespace: str, name: str, **_: Any) -> bool:
        return self.pods.pop(name, None) is not None


def cluster_node(fake: FakePods) -> Any:
    from oomlab.cli.thp import ClusterNode

    names = ("create_pod", "read_pod", "read_pod_log_tail", "delete_pod")
    patcher = mock.patch.multiple(kube, **{n: getattr(fake, n) for n in names})
    patcher.start()
    return patcher, ClusterNode("oomlab-vm", "default", "s")


def test_a_failed_helper_pod_is_deleted_and_its_log_is_the_error() -> None:
    fake = FakePods("Failed", ["before madvise", "PermissionError: [Errno 13] enabled"])
    patcher, node = cluster_node(fake)
    try:
        with pytest.raises(thp.ThpError, match=r"failed on oomlab-vm: .*PermissionError"):
            node.start_helper("always")
    finally:
        patcher.stop()
    assert fake.pods == {}
    assert fake.created[0]["spec"]["containers"][0]["args"] == ["always", "-1"]


def test_sampling_helper_and_one_shot_restore_are_deleted_after_use() -> None:
    fake = FakePods("Running", ["before madvise", "after always", "node t=1.0 thp=always"])
    patcher, node = cluster_node(fake)
    try:
        helper = node.start_helper("always")
        assert (helper.before, helper.after) == ("madvise", "always")
        assert len(node.finish_helper(helper)) == 3
        fake.phase, fake.log = "Succeeded", ["before always", "after madvise"]
        assert node.write_mode("madvise") == "madvise"
    finally:
        patcher.stop()
    assert fake.pods == {}
    assert [p["metadata"]["name"] for p in fake.created] == [
        "oomlab-thp-s-always",
        "oomlab-thp-s-restore",
    ]
