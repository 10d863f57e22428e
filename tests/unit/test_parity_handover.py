"""`oomlab parity NAME` hands its Docker run to the operator and writes no status.

The API is faked one level below kube.py (the CustomObjectsApi it calls), so what is checked is
the request the API server would get: a merge patch of metadata.annotations on the experiment,
never a patch of the status subresource. A stand-in for the operator folds the annotation with
the operator's real builder (:func:`oomlab.operator.status.assemble`) under its own configuration.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from typer.testing import CliRunner

from oomlab import kube
from oomlab.cli import main as cli
from oomlab.cli import parity as parity_cli
from oomlab.cli.container_runs import Row
from oomlab.experiment import ExperimentSpec
from oomlab.handover import OBSERVATION_ANNOTATION
from oomlab.operator.config import OperatorConfig
from oomlab.operator.docker_view import parse_observation
from oomlab.operator.status import assemble
from oomlab.rules.results import HostFacts, Outcome, RunResult
from oomlab.runners import ContainerRun

MiB = 2**20
NS = "lab"
SEED_SWAP = {
    "workload": {"mode": "bulk", "size": "1000Mi", "chunk": "500Mi"},
    "resources": {"requests": {"memory": "250Mi"}, "limits": {"memory": "500Mi"}},
    "docker": {"memory": "500m", "memorySwap": "1g"},
}
COMPLETED = RunResult(
    "docker", Outcome.COMPLETED, "completed", 0, host=HostFacts(engine_version="20.10.24")
)


class FakeCustomObjects:
    """The CustomObjectsApi calls kube.py makes for an experiment, recorded."""

    def __init__(self, operator_config: OperatorConfig | None) -> None:
        self.experiment: dict[str, Any] = {
            "apiVersion": "oomlab.dev/v1alpha1",
            "kind": "OOMExperiment",
            "metadata": {"name": "seed-swap", "namespace": NS, "uid": "u1", "generation": 1},
            "spec": copy.deepcopy(SEED_SWAP),
            "status": {"phase": "OOMKilled", "kubernetes": {"outcome": "OOMKilled"}},
        }
        self.patches: list[dict[str, Any]] = []
        self.operator_config = operator_config
        """None: no operator is running, nothing folds the annotation in."""

    def get_namespaced_custom_object(self, *args: Any, **_: Any) -> SimpleNamespace:
        if self.operator_config is not None:  # the operator reacted to the annotation
            spec = ExperimentSpec.from_spec(self.experiment["spec"])
            now = datetime.now(UTC)
            self.experiment["status"] = assemble(self.experiment, spec, self.operator_config, now)
        return SimpleNamespace(data=json.dumps(self.experiment).encode())

    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any, **kw: Any
    ) -> SimpleNamespace:
        self.patches.append({"body": copy.deepcopy(body), "content_type": kw.get("_content_type")})
        annotations = self.experiment["metadata"].setdefault("annotations", {})
        annotations.update(body["metadata"]["annotations"])
        return SimpleNamespace(data=json.dumps(self.experiment).encode())

    def patch_namespaced_custom_object_status(self, *args: Any, **_: Any) -> None:
        raise AssertionError("oomlab parity must not patch the status subresource")


@pytest.fixture
def docker_run() -> Iterator[None]:
    def run(runs: list[ContainerRun], *, quiet: bool) -> list[Row]:
        return [Row(run=runs[0], prediction=None, result=COMPLETED)]

    with mock.patch.object(parity_cli, "run_with_progress", run):
        yield


def invoke(fake: FakeCustomObjects) -> Any:
    with (
        mock.patch.object(kube, "_custom", lambda: fake),
        mock.patch.object(kube, "FOLD_TIMEOUT_S", 0.2),
    ):
        return CliRunner().invoke(cli.app, ["parity", "seed-swap", "-n", NS])


def only_annotation(patch: Mapping[str, Any]) -> str:
    """The patch touches metadata.annotations[OBSERVATION_ANNOTATION] and nothing else."""
    assert patch["content_type"] == kube.MERGE_PATCH
    body = patch["body"]
    assert list(body) == ["metadata"]
    assert list(body["metadata"]) == ["annotations"]
    assert list(body["metadata"]["annotations"]) == [OBSERVATION_ANNOTATION]
    text: str = body["metadata"]["annotations"][OBSERVATION_ANNOTATION]
    return text


def test_parity_patches_only_the_annotation_and_prints_the_operators_sentence(
    docker_run: None,
) -> None:
    fake = FakeCustomObjects(OperatorConfig())
    result = invoke(fake)
    assert result.exit_code == 0, result.output
    assert len(fake.patches) == 1
    text = only_annotation(fake.patches[0])
    observed = parse_observation(text, ExperimentSpec.from_spec(SEED_SWAP).docker)
    assert (observed["outcome"], observed["engineVersion"]) == ("Completed", "20.10.24")
    assert json.loads(text)["reason"] == "completed"
    assert fake.experiment["status"]["docker"]["source"] == "Observed"
    assert "parity: Mismatch: Docker (observed) completes" in result.output


def test_parity_says_so_when_no_operator_folds_it_in(docker_run: None) -> None:
    fake = FakeCustomObjects(None)
    result = invoke(fake)
    assert result.exit_code == 0, result.output
    only_annotation(fake.patches[0])
    assert "has not folded it in" in result.output
    assert "docker" not in fake.experiment["status"]
