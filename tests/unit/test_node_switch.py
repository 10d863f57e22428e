"""The privileged helper pod and result table thp-compare and memqos-compare share."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from oomlab.cli.node_switch import privileged_helper_pod, result_table, sigterm_as_interrupt


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
