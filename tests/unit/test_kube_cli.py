"""``oomlab kube``: the documents it would send, and its errors, without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from oomlab.cli.kube import cluster_spec, render
from oomlab.cli.main import app
from oomlab.runners.kubernetes import ClusterExperiment, Observed, swap_cost_known

runner = CliRunner()


def experiment_body(name: str, **options: Any) -> dict[str, Any]:
    """The document ``oomlab kube`` sends for these options."""
    return cluster_spec(**options).to_document(name)


def capture(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The documents ``oomlab kube`` would create; nothing is sent anywhere."""
    from oomlab.cli import kube as kube_cli

    created: list[dict[str, Any]] = []

    def run_experiments(
        namespace: str, experiments: list[ClusterExperiment], *, keep: bool
    ) -> list[Observed]:
        created.extend(e.spec.to_document(e.name, labels=e.labels) for e in experiments)
        return []

    monkeypatch.setattr(kube_cli, "run_experiments", run_experiments)
    return created


def test_the_document_is_what_the_crd_expects() -> None:
    body = experiment_body(
        "seed-swap", limit="500Mi", request="250Mi", mode="bulk", size="1000Mi",
        docker_memory="500m", docker_memory_swap="1g", timeout_s=120,
    )  # fmt: skip
    assert body["kind"] == "OOMExperiment"
    assert body["spec"]["resources"] == {
        "limits": {"memory": "500Mi"}, "requests": {"memory": "250Mi"},
    }  # fmt: skip
    assert body["spec"]["docker"] == {"memory": "500m", "memorySwap": "1g", "runtime": "runc"}
    assert body["spec"]["workload"]["mode"] == "bulk"
    assert body["spec"]["workload"]["size"] == "1000Mi"


@pytest.mark.parametrize(
    ("limit", "size", "option", "words"),
    [
        ("500m", "1000Mi", "--limit", "0.5 bytes"),
        ("500Mi", "1000M", "--mode/--size", "ambiguous"),
    ],
)
def test_docker_habits_are_caught_before_the_cluster(
    monkeypatch: pytest.MonkeyPatch, limit: str, size: str, option: str, words: str
) -> None:
    created = capture(monkeypatch)
    result = runner.invoke(app, ["kube", "run", "x", "--limit", limit, "--size", size])
    assert result.exit_code == 2
    assert f"Invalid value for {option}" in result.output and words in result.output
    assert created == []


def test_cli_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    bad = runner.invoke(app, ["kube", "run", "x", "--limit", "500m"])
    assert bad.exit_code == 2
    assert "0.5 bytes" in bad.output
    no_cluster = runner.invoke(app, ["kube", "run", "x"])
    assert no_cluster.exit_code == 2
    assert "no cluster configuration" in no_cluster.output
    assert "Traceback" not in bad.output + no_cluster.output


def test_render_reads_a_finished_status() -> None:
    body = experiment_body("seed-swap", limit="500Mi", request="250Mi", mode="bulk",
                           size="1000Mi", docker_memory="500m", docker_memory_swap="1g",
                           timeout_s=60)  # fmt: skip
    body["status"] = {
        "phase": "OOMKilled",
        "kubernetes": {"qosClass": "Burstable", "exitCode": 137, "swapLimitBytes": 0,
                       "predictedOutcome": "OOMKilled", "allocatedBytes": 450 * 2**20},
        "docker": {"outcome": "Completed", "source": "Observed"},
        "parity": {"result": "Mismatch", "explanation": "because NoSwap"},
    }  # fmt: skip
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render([body], "t"))
    text = console.export_text()
    assert "Burstable" in text and "Mismatch" in text and "450 MiB" in text and "0 B" in text


def test_matrix_runs_each_cell_on_each_kind_of_node(monkeypatch: pytest.MonkeyPatch) -> None:

    created = capture(monkeypatch)
    result = runner.invoke(
        app,
        ["kube", "matrix", "--swap-behavior", "NoSwap,LimitedSwap", "--request", "limit,400Mi",
         "--mode", "bulk"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cells = [
        (b["spec"].get("swapBehavior"), b["spec"]["resources"].get("requests")) for b in created
    ]
    assert cells == [
        ("NoSwap", None),
        ("NoSwap", {"memory": "400Mi"}),
        ("LimitedSwap", None),
        ("LimitedSwap", {"memory": "400Mi"}),
    ]
    created.clear()
    assert runner.invoke(app, ["kube", "matrix", "--mode", "bulk"]).exit_code == 0
    assert all("swapBehavior" not in b["spec"] for b in created)  # default: any node


def test_matrix_refuses_an_unknown_swap_behavior(monkeypatch: pytest.MonkeyPatch) -> None:
    from oomlab.cli import kube as kube_cli

    monkeypatch.setattr(kube_cli, "run_experiments", lambda *a, **k: pytest.fail("created"))
    result = runner.invoke(app, ["kube", "matrix", "--swap-behavior", "UnlimitedSwap"])
    assert result.exit_code == 2
    assert "Invalid value for --swap-behavior" in result.output
    assert "UnlimitedSwap: use any, NoSwap" in result.output


def test_render_shows_the_node_and_the_swap_check() -> None:
    body = experiment_body("seed-limited-swap", limit="500Mi", request="400Mi", mode="bulk",
                           size="1000Mi", docker_memory="500m", docker_memory_swap="1g",
                           timeout_s=60, swap_behavior="LimitedSwap")  # fmt: skip
    pending = render_text(body)
    assert "(asked: LimitedSwap)" in pending
    body["status"] = {
        "phase": "Completed",
        "kubernetes": {"nodeName": "oomlab-vm", "swapBehavior": "LimitedSwap",
                       "cgroupVersion": "v2", "transparentHugepages": "madvise",
                       "qosClass": "Burstable", "swapLimitBytes": 587_960_320,
                       "predictedSwapBytes": 587_960_320, "swapLimitAgrees": True},
    }  # fmt: skip
    text = render_text(body)
    for shown in ("oomlab-vm", "LimitedSwap", "cgroup v2", "THP madvise", "= predicted"):
        assert shown in text, text
    body["status"]["kubernetes"].update(swapLimitBytes=0, swapLimitAgrees=False)
    assert "!= predicted" in render_text(body)


def render_text(body: dict[str, Any]) -> str:
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(render([body], "t"))
    return console.export_text()


def test_swap_cost_is_asked_for_waited_for_and_shown(monkeypatch: pytest.MonkeyPatch) -> None:

    created = capture(monkeypatch)
    args = ["kube", "matrix", "--swap-behavior", "LimitedSwap", "--request", "400Mi",
            "--mode", "bulk", "--measure-swap-cost"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    assert [b["spec"].get("measureSwapCost") for b in created] == [True]
    body = created[0]
    body["status"] = {"phase": "Completed", "swapCost": {"state": "Measuring"}}
    assert not swap_cost_known(body)  # the outcome is in, the twin still runs
    body["status"]["swapCost"] = {
        "state": "Done", "summary": "6.1x",
        "message": "Swap saved it at 6.1 times the cost: 30.50 s vs 5.00 s with memory enough.",
    }  # fmt: skip
    assert swap_cost_known(body)
    text = render_text(body)
    assert "swap cost 6.1x" in text and "6.1 times the cost" in text
    del body["status"]["swapCost"]
    assert "swap cost" not in render_text(body).lower()


MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
RUNC = yaml.safe_load((MANIFESTS / "cluster" / "runtimeclasses.yaml").read_text())
CRUN = yaml.safe_load((MANIFESTS / "cluster" / "vm-runtimeclasses.yaml").read_text())
NODES = [
    {"metadata": {"name": "oomlab-node", "labels": {"oomlab.dev/cgroup-version": "v1"}}},
    {
        "metadata": {
            "name": "oomlab-vm",
            "labels": {
                "oomlab.dev/swap-behavior": "LimitedSwap",
                "oomlab.dev/cgroup-version": "v2",
            },
        },
        "spec": {"taints": [{"key": "oomlab.dev/swap", "effect": "NoSchedule"}]},
    },
]


def test_runnable_pairs_leave_out_what_a_class_cannot_run_with_the_reason() -> None:
    from oomlab.cli.kube import runnable_pairs

    pairs, skipped = runnable_pairs(
        ["NoSwap", "LimitedSwap"], ["runc", "crun"], [RUNC, CRUN], NODES
    )
    assert pairs == [("NoSwap", "runc"), ("LimitedSwap", "runc"), ("LimitedSwap", "crun")]
    (left_out,) = skipped
    assert (left_out.runtime_class, left_out.swap_behavior) == ("crun", "NoSwap")
    assert "none of them is a NoSwap node" in left_out.why
    # Classes not listable (no RBAC): everything is created and the operator says.
    pairs, skipped = runnable_pairs(["NoSwap"], ["crun", "default"], None, None)
    assert (pairs, skipped) == ([("NoSwap", "crun"), ("NoSwap", "default")], [])


def test_matrix_runs_each_class_on_each_swap_behavior_it_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oomlab.cli import kube as kube_cli

    created = capture(monkeypatch)
    monkeypatch.setattr(kube_cli.kube, "list_runtime_classes", lambda: [RUNC, CRUN])
    monkeypatch.setattr(kube_cli.kube, "list_nodes", lambda: NODES)
    result = runner.invoke(
        app,
        ["kube", "matrix", "--swap-behavior", "NoSwap,LimitedSwap", "--runtime-class",
         "runc,crun", "--request", "400Mi", "--mode", "bulk"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cells = [(b["spec"]["swapBehavior"], b["spec"]["runtimeClassName"]) for b in created]
    assert cells == [("NoSwap", "runc"), ("LimitedSwap", "runc"), ("LimitedSwap", "crun")]
    assert "left out: runtime class crun with swap behaviour NoSwap" in result.output


def test_matrix_refuses_a_malformed_runtime_class(monkeypatch: pytest.MonkeyPatch) -> None:
    from oomlab.cli import kube as kube_cli

    monkeypatch.setattr(kube_cli, "run_experiments", lambda *a, **k: pytest.fail("created"))
    result = runner.invoke(app, ["kube", "matrix", "--runtime-class", "runc,Crun"])
    assert result.exit_code == 2
    assert "Crun: not a RuntimeClass name" in result.output


def test_render_names_the_runtime_class_asked_for_and_the_handler_that_ran() -> None:
    body = experiment_body("x", limit="500Mi", request="400Mi", mode="bulk", size="1000Mi",
                           docker_memory=None, docker_memory_swap=None, timeout_s=60,
                           swap_behavior="LimitedSwap", runtime_class="crun")  # fmt: skip
    assert body["spec"]["runtimeClassName"] == "crun"
    assert "(asked: LimitedSwap, runtime class crun)" in render_text(body)
    body["status"] = {
        "kubernetes": {"nodeName": "oomlab-vm", "swapBehavior": "LimitedSwap",
                       "cgroupVersion": "v2", "runtimeHandler": "crun"},
    }  # fmt: skip
    assert "runtime crun" in render_text(body)
