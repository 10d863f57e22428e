"""spec.runtimeClassName against the cluster: the name's shape (the CRD's rule and ours agree),
existence, and whether a node offering the class can meet swapBehavior."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from oomlab.rules.runtimeclass import (
    NodeView,
    RuntimeClassCheck,
    RuntimeClassFacts,
    check_runtime_class,
    is_dns1123_subdomain,
    node_view,
    runtime_class_from_doc,
    tolerates,
)
from oomlab.rules.semantics import SwapBehavior

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
SWAP_TAINT = {"key": "oomlab.dev/swap", "value": "LimitedSwap", "effect": "NoSchedule"}
HOST = NodeView(
    "oomlab-node", {"oomlab.dev/swap-behavior": "NoSwap", "oomlab.dev/cgroup-version": "v1"}, []
)
VM = NodeView(
    "oomlab-vm",
    {"oomlab.dev/swap-behavior": "LimitedSwap", "oomlab.dev/cgroup-version": "v2"},
    [SWAP_TAINT],
)


def project_classes() -> list[RuntimeClassFacts]:
    """The RuntimeClasses the local cluster really applies."""
    docs = [
        yaml.safe_load((MANIFESTS / "cluster" / name).read_text())
        for name in ("runtimeclasses.yaml", "vm-runtimeclasses.yaml")
    ]
    return [runtime_class_from_doc(doc) for doc in docs]


NAMES = [
    ("runc", True),
    ("crun", True),
    ("gvisor.example-1", True),
    ("a", True),
    ("Crun", False),
    ("crun_v2", False),
    ("-crun", False),
    ("crun-", False),
    ("crun..x", False),
    ("", False),
    ("a" * 254, False),
]


@pytest.mark.parametrize(("name", "ok"), NAMES)
def test_dns1123_subdomain(name: str, ok: bool) -> None:
    assert is_dns1123_subdomain(name) is ok


@pytest.mark.parametrize(("name", "ok"), [n for n in NAMES if len(n[0]) <= 253])
def test_the_crds_rule_is_the_same_pattern(name: str, ok: bool) -> None:
    crd = yaml.safe_load((MANIFESTS / "crd" / "oomexperiments.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    field = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "runtimeClassName"
    ]
    (rule,) = field["x-kubernetes-validations"]
    assert "DNS-1123" in rule["message"] and "DNS-1123" in rule["messageExpression"]
    # CEL string literal -> regex: the CEL source escapes the backslash once more.
    pattern = rule["rule"].split("'")[1].replace("\\\\", "\\")
    assert (re.match(pattern, name) is not None) is ok
    assert field["maxLength"] == 253


def test_the_project_classes_are_read_as_applied() -> None:
    runc, crun = project_classes()
    assert runc == RuntimeClassFacts("runc", "runc")
    assert crun.handler == "crun"
    assert crun.node_selector == {"oomlab.dev/cgroup-version": "v2"}
    assert any(t["key"] == "oomlab.dev/swap" for t in crun.tolerations)


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"key": "oomlab.dev/swap", "operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": "oomlab.dev/swap", "operator": "Exists"}, True),
        ({"operator": "Exists"}, True),
        ({"key": "oomlab.dev/swap", "value": "LimitedSwap", "effect": "NoSchedule"}, True),
        ({"key": "oomlab.dev/swap", "value": "NoSwap", "effect": "NoSchedule"}, False),
        ({"key": "oomlab.dev/swap", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_tolerates(toleration: dict[str, Any], expected: bool) -> None:
    assert tolerates(toleration, SWAP_TAINT) is expected


def test_node_view_reads_labels_and_taints() -> None:
    node = {"metadata": {"name": "n", "labels": {"a": "b"}}, "spec": {"taints": [SWAP_TAINT]}}
    assert node_view(node) == NodeView("n", {"a": "b"}, [SWAP_TAINT])
    assert node_view({"metadata": {"name": "bare"}}) == NodeView("bare", {}, [])


@pytest.mark.parametrize(
    ("name", "behavior", "reason", "handler"),
    [
        ("runc", None, "", "runc"),
        ("runc", SwapBehavior.NO_SWAP, "", "runc"),
        ("runc", SwapBehavior.LIMITED_SWAP, "", "runc"),
        ("crun", None, "", "crun"),
        ("crun", SwapBehavior.LIMITED_SWAP, "", "crun"),
        ("crun", SwapBehavior.NO_SWAP, "RuntimeClassUnschedulable", "crun"),
        ("kata", None, "RuntimeClassNotFound", None),
    ],
)
def test_check_on_the_local_cluster(
    name: str, behavior: SwapBehavior | None, reason: str, handler: str | None
) -> None:
    check = check_runtime_class(name, project_classes(), [HOST, VM], swap_behavior=behavior)
    assert (check.reason, check.handler) == (reason, handler)
    assert bool(check.message) is bool(reason)


def test_not_found_names_every_class_or_says_there_are_none() -> None:
    check = check_runtime_class("kata", project_classes(), [HOST], swap_behavior=None)
    assert (
        "RuntimeClass 'kata' does not exist in this cluster (the ones that do are crun, runc)"
        in (check.message)
    )
    none = check_runtime_class("kata", [], [HOST], swap_behavior=None)
    assert "(this cluster has none)" in none.message


def test_unschedulable_sentence_says_where_it_runs_and_what_to_change() -> None:
    check = check_runtime_class(
        "crun", project_classes(), [HOST, VM], swap_behavior=SwapBehavior.NO_SWAP
    )
    assert check.message == (
        "RuntimeClass 'crun' (handler crun) runs only on nodes with "
        "oomlab.dev/cgroup-version=v2: oomlab-vm (LimitedSwap); none of them is a NoSwap node, "
        "so the pod could never be scheduled: use swapBehavior LimitedSwap, or another "
        "runtimeClassName (runc)."
    )


def test_a_cgroup_v2_noswap_node_makes_crun_noswap_fine() -> None:
    """kind on a cgroup v2 runner: NoSwap and cgroup v2 together; crun must not be refused."""
    v2_noswap = NodeView(
        "kind", {"oomlab.dev/swap-behavior": "NoSwap", "oomlab.dev/cgroup-version": "v2"}, []
    )
    check = check_runtime_class(
        "crun", project_classes(), [HOST, VM, v2_noswap], swap_behavior=SwapBehavior.NO_SWAP
    )
    assert check.reason == ""


def test_no_node_offering_the_class_yet_is_not_a_contradiction() -> None:
    """The VM node still booting: the pod waits for it like any other pod."""
    check = check_runtime_class(
        "crun", project_classes(), [HOST], swap_behavior=SwapBehavior.NO_SWAP
    )
    assert (check.reason, check.handler) == ("", "crun")


def test_the_experiments_own_node_selector_counts() -> None:
    def runc_on_the_host_node(nodes: list[NodeView]) -> RuntimeClassCheck:
        return check_runtime_class(
            "runc",
            project_classes(),
            nodes,
            swap_behavior=SwapBehavior.LIMITED_SWAP,
            node_selector={"kubernetes.io/hostname": "oomlab-node"},
        )

    # no node has that hostname label: nothing offers it, so it waits
    assert runc_on_the_host_node([HOST, VM]).reason == ""
    host = NodeView("oomlab-node", {**HOST.labels, "kubernetes.io/hostname": "oomlab-node"}, [])
    check = runc_on_the_host_node([host, VM])
    assert check.reason == "RuntimeClassUnschedulable"
    assert "use swapBehavior NoSwap, or another runtimeClassName (crun)" in check.message
