"""``oomlab kube matrix --sweep``: the OOMSweep it sends, and that its cells are the cells the
matrix runs one by one (same specs, same order), without a cluster."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from oomlab.cli import kube as kube_cli
from oomlab.cli.main import app
from oomlab.runners.kubernetes import ClusterExperiment, Observed
from oomlab.sweep import plan

pytestmark = pytest.mark.unit

runner = CliRunner()
OPTIONS = ["--swap-behavior", "NoSwap,LimitedSwap", "--request", "limit,400Mi",
           "--limit", "500Mi", "--mode", "bulk,streaming"]  # fmt: skip


def capture_sweep(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    sent: dict[str, Any] = {}

    def run_sweep(namespace: str, body: dict[str, Any], **_: Any) -> Any:
        sent.update(namespace=namespace, body=body)
        return {"phase": "Done", "message": "8/8 cells finished"}, []

    monkeypatch.setattr(kube_cli, "run_sweep", run_sweep)
    monkeypatch.setattr(kube_cli, "delete_sweep", lambda ns, name: sent.update(deleted=name))
    return sent


def capture_one_by_one(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    created: list[dict[str, Any]] = []

    def run_experiments(
        namespace: str, experiments: list[ClusterExperiment], *, keep: bool
    ) -> list[Observed]:
        created.extend(e.spec.to_document(e.name) for e in experiments)
        return []

    monkeypatch.setattr(kube_cli, "run_experiments", run_experiments)
    return created


def test_the_sweep_holds_the_same_cells_as_the_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = capture_sweep(monkeypatch)
    result = runner.invoke(app, ["kube", "matrix", "--sweep", "-n", "lab", *OPTIONS])
    assert result.exit_code == 0, result.output
    body = sent["body"]
    assert body["kind"] == "OOMSweep" and sent["namespace"] == "lab"
    assert body["spec"]["maxRunningPerNodeKind"] == 2
    assert "8/8 cells finished" in result.output
    sweep_cells = plan({**body, "metadata": {**body["metadata"], "namespace": "lab"}})
    assert sweep_cells.invalid == {}

    one_by_one = capture_one_by_one(monkeypatch)
    assert runner.invoke(app, ["kube", "matrix", *OPTIONS]).exit_code == 0

    # the very same experiment specs (documents written by the one writer), in any order
    assert sorted(repr(d["spec"]) for d in sweep_cells.documents.values()) == sorted(
        repr(d["spec"]) for d in one_by_one
    )
    assert len(one_by_one) == 8


def test_delete_removes_the_sweep_and_keep_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = capture_sweep(monkeypatch)
    assert runner.invoke(app, ["kube", "matrix", "--sweep", "--delete"]).exit_code == 0
    assert sent["deleted"] == sent["body"]["metadata"]["name"]
    sent.clear()
    result = runner.invoke(app, ["kube", "matrix", "--sweep"])
    assert "deleted" not in sent and "kubectl delete oomsweep" in result.output


def test_any_node_is_no_axis_and_cannot_be_mixed(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = capture_sweep(monkeypatch)
    assert runner.invoke(app, ["kube", "matrix", "--sweep"]).exit_code == 0
    assert "swapBehaviors" not in sent["body"]["spec"]["axes"]
    result = runner.invoke(app, ["kube", "matrix", "--sweep", "--swap-behavior", "any,NoSwap"])
    assert result.exit_code != 0 and "cannot be mixed" in result.output
