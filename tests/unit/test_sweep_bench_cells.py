"""The sweep bench's cells (bench/sweep_cells.py): one sweep over both node kinds with the counts
asked for, and the direct side creating exactly the sweep's planned experiments."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from oomlab.experiment import ExperimentSpec, build_pod
from oomlab.rules.nodes import SWAP_BEHAVIOR_LABEL, SWAP_TAINT_KEY
from oomlab.rules.sweep import CELL_LABEL, SWEEP_LABEL, cells_to_start
from oomlab.sweep import plan

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_cells() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sweep_cells", BENCH / "sweep_cells.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("sweep_cells", module)
    spec.loader.exec_module(module)
    return module


cells_module = load_cells()


@pytest.mark.parametrize(("host", "vm"), [(100, 8), (100, 0), (9, 3), (150, 50)])
def test_the_sweep_plans_the_cells_asked_for_on_each_node_kind(host: int, vm: int) -> None:
    body = cells_module.sweep_body("bench", host, vm, 50)
    planned = plan({**body, "metadata": {**body["metadata"], "namespace": "ns"}})
    assert planned.error is None and planned.invalid == {}
    kinds = Counter(cell.node_kind for cell in planned.cells)
    assert kinds == Counter({"NoSwap": host, "LimitedSwap": vm}) - Counter()
    assert len(planned.documents) == host + vm


def test_each_kind_lands_on_its_node_and_stays_small() -> None:
    """Only the VM cells' pods select the LimitedSwap node and tolerate its taint; every cell
    writes 4..12Mi under a limit of 48Mi or more (so all Complete, quickly)."""
    body = cells_module.sweep_body("bench", 100, 8, 50)
    for cell in plan(body).cells:
        spec = ExperimentSpec.from_spec(cell.spec)
        assert spec.swap_behavior is not None and spec.swap_behavior.value == cell.node_kind
        pod = build_pod(cell.name, "ns", "uid", spec)["spec"]
        to_vm = pod.get("nodeSelector", {}).get(SWAP_BEHAVIOR_LABEL) == "LimitedSwap"
        tolerates = any(t["key"] == SWAP_TAINT_KEY for t in pod.get("tolerations") or [])
        assert to_vm == tolerates == (cell.node_kind == "LimitedSwap")
        size = int(cell.spec["workload"]["size"].removesuffix("Mi"))
        limit = int(cell.spec["resources"]["limits"]["memory"].removesuffix("Mi"))
        assert 4 <= size <= 12 and limit >= 48 and size * 4 <= limit


def test_the_sweep_runs_at_most_max_running_per_node_kind() -> None:
    body = cells_module.sweep_body("bench", 100, 8, 50)
    started = Counter(c.node_kind for c in cells_to_start(plan(body).cells, {}, 50))
    assert started == Counter({"NoSwap": 50, "LimitedSwap": 8})


def test_the_direct_documents_are_the_sweeps_planned_cells_without_its_labels() -> None:
    body = cells_module.sweep_body("bench", 100, 8, 50)
    planned = plan({**body, "metadata": {**body["metadata"], "namespace": "bench-direct-x"}})
    direct = cells_module.direct_documents(body, "bench-direct-x")
    assert [d["metadata"]["name"] for d in direct] == list(planned.documents)
    for document in direct:
        expected = planned.documents[document["metadata"]["name"]]
        labels = dict(expected["metadata"]["labels"])
        assert labels.pop(SWEEP_LABEL) == "bench" and CELL_LABEL in labels
        labels.pop(CELL_LABEL)
        assert document["metadata"].get("labels", {}) == labels
        assert document["metadata"]["namespace"] == "bench-direct-x"
        assert {k: v for k, v in document.items() if k != "metadata"} == {
            k: v for k, v in expected.items() if k != "metadata"
        }


def test_a_node_kind_is_finished_when_its_every_cell_is_terminal() -> None:
    kinds = {"a": "NoSwap", "b": "NoSwap", "c": "LimitedSwap"}
    finished = cells_module.finished_kinds
    assert finished(kinds, {}) == set()
    assert finished(kinds, {"a": "Completed", "c": "Running"}) == set()
    assert finished(kinds, {"a": "Completed", "b": "OOMKilled", "c": ""}) == {"NoSwap"}
    assert finished(kinds, dict.fromkeys(kinds, "Completed")) == {"NoSwap", "LimitedSwap"}
