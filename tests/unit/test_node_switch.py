"""The privileged helper pod and result table thp-compare and memqos-compare share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console

from oomlab.cli import node_switch
from oomlab.cli.node_switch import privileged_helper_pod, result_table, sigterm_as_interrupt
from oomlab.rules.semantics import SwapBehavior
from oomlab.rules.workload import Mode, WorkloadSpec
from oomlab.runners.kubernetes import ClusterExperiment


def helper(host_pid: bool) -> dict[str, Any]:
    return privileged_helper_pod(
        "h", "lab", "oomlab-vm", image="oomlab/memhog:dev", component="x-helper",
        labels={"oomlab.dev/compare": "s"}, host_pid=host_pid,
        container={"name": "x", "command": ["python3", "-c", "pass"], "args": ["a"]},
        volumes=[{"name": "v", "hostPath": {"path": "/sys"}}],
    )  # fmt: skip


def test_helper_pod_runs_privileged_as_root_on_its_node_only() -> None:
    pod = helper(host_pid=False)
    assert pod["metadata"] == {
        "name": "h",
        "namespace": "lab",
        "labels": {"oomlab.dev/compare": "s", "app.kubernetes.io/component": "x-helper"},
    }
    assert pod["spec"] == {
        "nodeName": "oomlab-vm",
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "tolerations": [{"key": "oomlab.dev/swap", "operator": "Exists"}],
        "containers": [
            {
                "name": "x",
                "image": "oomlab/memhog:dev",
                "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "-c", "pass"],
                "args": ["a"],
                "securityContext": {"privileged": True, "runAsUser": 0, "runAsNonRoot": False},
            }
        ],
        "volumes": [{"name": "v", "hostPath": {"path": "/sys"}}],
    }


def test_host_pid_only_when_asked() -> None:
    assert helper(host_pid=True)["spec"]["hostPID"] is True
    assert "hostPID" not in helper(host_pid=False)["spec"]


def test_result_table_has_the_headings_and_rows() -> None:
    console = Console(width=120, record=True)
    console.print(result_table("T on n", ("setting", "outcome"), [["off", "OOMKilled"]]))
    text = console.export_text()
    assert "T on n" in text
    assert "setting" in text and "OOMKilled" in text


def test_sigterm_ends_like_ctrl_c() -> None:
    with pytest.raises(KeyboardInterrupt):
        sigterm_as_interrupt(15, None)


class FakeRunner:
    made: ClassVar[list[FakeRunner]] = []

    def __init__(self, namespace: str, *, keep: bool, on_update: Any) -> None:
        self.namespace, self.keep, self.on_update = namespace, keep, on_update
        self.runs: list[tuple[list[ClusterExperiment], float]] = []
        FakeRunner.made.append(self)

    def run_all(self, experiments: list[ClusterExperiment], *, timeout_s: float) -> list[Any]:
        self.runs.append((experiments, timeout_s))
        return ["observed"]


def test_run_on_node_pins_one_kept_limited_swap_experiment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_switch, "KubernetesRunner", FakeRunner)
    FakeRunner.made.clear()
    observed = node_switch.run_on_node(
        "lab", "oomlab-vm", "thp-1-always", WorkloadSpec(Mode.BULK, 600 * 2**20),
        limit="500Mi", request="400Mi", timeout_s=60, labels={"c": "s"}, on_update=print,
    )  # fmt: skip
    assert observed == "observed"
    (runner,) = FakeRunner.made
    assert (runner.namespace, runner.keep, runner.on_update) == ("lab", True, print)
    ((experiment,), timeout_s) = runner.runs[0]
    assert timeout_s == 360
    assert experiment.name == "thp-1-always" and experiment.labels == {"c": "s"}
    spec = experiment.spec
    assert spec.swap_behavior == SwapBehavior.LIMITED_SWAP
    assert spec.node_selector == {"kubernetes.io/hostname": "oomlab-vm"}
    assert (spec.limit_text, spec.request_text, spec.timeout_s) == ("500Mi", "400Mi", 60)
    assert spec.workload == WorkloadSpec(Mode.BULK, 600 * 2**20)


@pytest.mark.parametrize("as_json", [True, False])
def test_comparison_json_is_saved_and_printed_only_when_asked(
    tmp_path: Path, as_json: bool
) -> None:
    console = Console(record=True, width=80)
    save = tmp_path / "thp.json"
    printed = node_switch.save_and_print_json({"node": "oomlab-vm"}, save, as_json, console)
    assert printed is as_json
    assert json.loads(save.read_text()) == {"node": "oomlab-vm"}
    assert ('"oomlab-vm"' in console.export_text()) is as_json
    assert not node_switch.save_and_print_json({}, None, False, console)
