"""The kubelet version as a dimension: what 1.34 and 1.37 do differently here (failCgroupV1,
Memory QoS, resize) and the same (the LimitedSwap share), the host node's failCgroupV1 fact and
what it tells users, and the node facts and placement that pick one kubelet's node."""

from __future__ import annotations

from typing import Any

import pytest

from oomlab.experiment import ExperimentSpec, build_pod
from oomlab.rules.kubelet_versions import (
    KubeletDefaults,
    cgroup_v1_note,
    fail_cgroup_v1,
    kubelet_defaults,
    kubelet_minor,
)
from oomlab.rules.nodes import NodeFacts, kubelet_placement, node_facts_from_node
from oomlab.rules.results import CgroupVersion
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.workload import WorkloadSpec

V1, V2 = CgroupVersion.V1, CgroupVersion.V2


@pytest.mark.parametrize(
    ("version", "minor"),
    [("v1.37.2", (1, 37)), ("1.34.4", (1, 34)), ("v1.35.0-rc.1", (1, 35)), ("", None), (None, None),
     ("latest", None)],
)  # fmt: skip
def test_kubelet_minor(version: str | None, minor: tuple[int, int] | None) -> None:
    assert kubelet_minor(version) == minor


@pytest.mark.parametrize(
    ("version", "fail_v1", "memory_qos", "resize_ga"),
    [
        ("v1.34.4", False, False, False),
        ("v1.35.4", True, False, True),
        ("v1.36.3", True, False, True),
        ("v1.37.2", True, True, True),
    ],
)
def test_defaults_that_differ_by_version(
    version: str, fail_v1: bool, memory_qos: bool, resize_ga: bool
) -> None:
    defaults = kubelet_defaults(version)
    assert defaults == KubeletDefaults(fail_v1, memory_qos, resize_ga)


def test_the_limited_swap_formula_is_the_same_for_both_versions() -> None:
    old, new = kubelet_defaults("v1.34.4"), kubelet_defaults("v1.37.2")
    assert old is not None and new is not None
    assert old.limited_swap_formula == new.limited_swap_formula
    assert kubelet_defaults("unknown") is None


@pytest.mark.parametrize(
    ("node", "cgroup", "expected"),
    [
        # the label says it
        (NodeFacts("h", kubelet_version="v1.37.2", fail_cgroup_v1=False), V1, False),
        (NodeFacts("h", kubelet_version="v1.34.4", fail_cgroup_v1=True), V2, True),
        # a 1.35+ kubelet that runs on cgroup v1 cannot have it true
        (NodeFacts("h", kubelet_version="v1.37.2"), V1, False),
        # otherwise the version's default
        (NodeFacts("h", kubelet_version="v1.37.2"), V2, True),
        (NodeFacts("h", kubelet_version="v1.34.4"), V1, False),
        (NodeFacts("h"), V1, None),
    ],
)
def test_fail_cgroup_v1(node: NodeFacts, cgroup: CgroupVersion, expected: bool | None) -> None:
    assert fail_cgroup_v1(node, cgroup) is expected


def test_cgroup_v1_note_says_why_the_kubelet_runs_and_that_v1_is_going() -> None:
    host = NodeFacts("oomlab-node", kubelet_version="v1.37.2", fail_cgroup_v1=False)
    note = cgroup_v1_note(host, V1)
    assert note is not None
    assert "kubelet v1.37.2 runs on this cgroup v1 node only because" in note
    assert "failCgroupV1: false" in note and "default is true from 1.35" in note
    assert "will remove it" in note and "cgroup v2" in note
    old = cgroup_v1_note(NodeFacts("n", kubelet_version="v1.34.4", fail_cgroup_v1=False), V1)
    assert old is not None and "keeps starting after an upgrade to 1.35+" in old
    unset = cgroup_v1_note(NodeFacts("n", kubelet_version="v1.34.4"), V1)
    assert unset is not None and "from 1.35 a kubelet refuses cgroup v1 unless" in unset
    # the node's own label is used when no better cgroup version is given
    assert cgroup_v1_note(NodeFacts("n", cgroup_version=V1, kubelet_version="v1.37.2"))
    assert cgroup_v1_note(host, V2) is None
    assert cgroup_v1_note(NodeFacts("n", kubelet_version="v1.37.2")) is None


def node_doc(labels: dict[str, str], taints: list[dict[str, str]] | None = None) -> Any:
    return {
        "metadata": {"name": "n", "labels": labels},
        "spec": {"taints": taints or []},
        "status": {"nodeInfo": {"kubeletVersion": "v1.34.4"}},
    }


def test_node_facts_read_fail_cgroup_v1_and_the_kubelet_taint() -> None:
    host = node_facts_from_node(node_doc({"oomlab.dev/fail-cgroup-v1": "false"}))
    assert (host.fail_cgroup_v1, host.kubelet_tainted) == (False, False)
    assert node_facts_from_node(node_doc({"oomlab.dev/fail-cgroup-v1": "true"})).fail_cgroup_v1
    assert (
        node_facts_from_node(node_doc({"oomlab.dev/fail-cgroup-v1": "no"})).fail_cgroup_v1 is None
    )
    taint = {"key": "oomlab.dev/kubelet-version", "value": "v1.34.4", "effect": "NoSchedule"}
    old = node_facts_from_node(node_doc({}, [taint]))
    assert old.kubelet_tainted and old.kubelet_version == "v1.34.4"
    swap_only = node_facts_from_node(node_doc({}, [{"key": "oomlab.dev/swap"}]))
    assert not swap_only.kubelet_tainted


def test_an_experiment_pinned_to_a_kubelet_tolerates_its_taint_and_selects_its_label() -> None:
    pinned = kubelet_placement("v1.34.4")
    spec = ExperimentSpec.build(
        WorkloadSpec(size_bytes=64 * 2**20),
        limit="200Mi",
        request="100Mi",
        swap_behavior=SwapBehavior.LIMITED_SWAP,
        node_selector=pinned.node_selector,
        tolerations=pinned.tolerations,
    )
    pod = build_pod("x", "ns", "0123456789ab", spec)["spec"]
    assert pod["nodeSelector"] == {
        "oomlab.dev/kubelet-version": "v1.34.4",
        "oomlab.dev/swap-behavior": "LimitedSwap",
    }
    tolerated = {(t["key"], t.get("value")) for t in pod["tolerations"]}
    assert tolerated == {("oomlab.dev/kubelet-version", "v1.34.4"), ("oomlab.dev/swap", None)}
