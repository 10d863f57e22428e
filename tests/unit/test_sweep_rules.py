"""The OOMSweep rules: axes into cells, names, the scheduler, the status (tables)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from oomlab.experiment import ExperimentSpec
from oomlab.rules.classify import Phase
from oomlab.rules.sweep import (
    ANY_NODE,
    CELL_LABEL,
    MAX_CELLS,
    SWEEP_LABEL,
    Cell,
    SweepError,
    cell_count,
    cell_labels,
    cell_name,
    cells_to_start,
    expand,
    max_running,
)
from oomlab.rules.sweep_status import SweepPhase, cell_row, prediction_held, summarize
from oomlab.sweep import plan, sweep_document

pytestmark = pytest.mark.unit

TEMPLATE: dict[str, Any] = {
    "workload": {"mode": "bulk", "size": "16Mi", "chunk": "8Mi", "imagePullPolicy": "Never"},
    "resources": {"limits": {"memory": "64Mi"}},
    "timeoutSeconds": 120,
}


def sweep_spec(**axes: Any) -> dict[str, Any]:
    return {"template": copy.deepcopy(TEMPLATE), "axes": axes}


def sweep_body(name: str = "grid", **axes: Any) -> dict[str, Any]:
    return {
        "apiVersion": "oomlab.dev/v1alpha1",
        "kind": "OOMSweep",
        "metadata": {"name": name, "namespace": "lab", "uid": "sweep-uid", "generation": 1},
        "spec": sweep_spec(**axes),
    }


# --- expansion ----------------------------------------------------------------------------------


def test_every_combination_is_one_cell_the_last_axis_fastest() -> None:
    cells = expand(
        "grid", sweep_spec(limits=["64Mi", "128Mi"], swapBehaviors=["NoSwap", "LimitedSwap"])
    )
    assert [(c.index, c.name) for c in cells] == [
        (0, "grid-000"),
        (1, "grid-001"),
        (2, "grid-002"),
        (3, "grid-003"),
    ]
    assert [(c.spec["resources"]["limits"]["memory"], c.spec["swapBehavior"]) for c in cells] == [
        ("64Mi", "NoSwap"),
        ("64Mi", "LimitedSwap"),
        ("128Mi", "NoSwap"),
        ("128Mi", "LimitedSwap"),
    ]
    assert [c.node_kind for c in cells] == ["NoSwap", "LimitedSwap"] * 2


@pytest.mark.parametrize(
    ("axes", "path", "expected"),
    [
        ({"requests": ["32Mi"]}, ("resources", "requests", "memory"), "32Mi"),
        ({"modes": ["streaming"]}, ("workload", "mode"), "streaming"),
        ({"sizes": ["1Gi"]}, ("workload", "size"), "1Gi"),
        ({"runtimeClassNames": ["crun"]}, ("runtimeClassName",), "crun"),
        ({"swapBehaviors": ["LimitedSwap"]}, ("swapBehavior",), "LimitedSwap"),
        ({"nodes": [{"name": "v137", "nodeSelector": {"k": "v"}}]}, ("nodeSelector", "k"), "v"),
    ],
)
def test_each_axis_sets_its_field(
    axes: dict[str, Any], path: tuple[str, ...], expected: str
) -> None:
    (cell,) = expand("s", sweep_spec(**axes))
    value: Any = cell.spec
    for key in path:
        value = value[key]
    assert value == expected


def test_none_request_and_empty_runtime_class_remove_the_template_values() -> None:
    spec = sweep_spec(requests=["none"], runtimeClassNames=[""])
    spec["template"]["resources"]["requests"] = {"memory": "32Mi"}
    spec["template"]["runtimeClassName"] = "crun"
    (cell,) = expand("s", spec)
    assert "requests" not in cell.spec["resources"]
    assert "runtimeClassName" not in cell.spec


def test_the_template_is_never_changed_by_a_cell() -> None:
    spec = sweep_spec(limits=["32Mi", "64Mi"])
    before = copy.deepcopy(spec)
    expand("s", spec)
    assert spec == before


def test_node_kind_from_node_selection_then_swap_behavior_then_any() -> None:
    nodes = [{"name": "kubelet-137", "nodeSelector": {"v": "1.37"}}]
    (by_node,) = expand("s", sweep_spec(nodes=nodes, swapBehaviors=["LimitedSwap"]))
    (by_swap,) = expand("s", sweep_spec(swapBehaviors=["NoSwap"]))
    (anywhere,) = expand("s", sweep_spec(limits=["64Mi"]))
    assert (by_node.node_kind, by_swap.node_kind, anywhere.node_kind) == (
        "kubelet-137",
        "NoSwap",
        ANY_NODE,
    )


def test_node_selection_merges_tolerations_without_duplicates() -> None:
    taint = {"key": "oomlab.dev/swap", "operator": "Exists", "effect": "NoSchedule"}
    spec = sweep_spec(nodes=[{"name": "vm", "tolerations": [taint]}])
    spec["template"]["tolerations"] = [taint]
    (cell,) = expand("s", spec)
    assert cell.spec["tolerations"] == [taint]


def test_variants_are_cells_that_are_no_product_merged_under_the_other_axes() -> None:
    variants = [
        {"name": "guaranteed", "nodeKind": "host",
         "spec": {"resources": {"requests": {"memory": "64Mi"}}, "swapBehavior": "NoSwap"}},
        {"name": "streaming", "spec": {"workload": {"mode": "streaming", "window": 2}}},
    ]  # fmt: skip
    first, second = expand("s", sweep_spec(variants=variants))
    # merged key by key: the template's limit and workload stay beside the variant's values
    assert first.spec["resources"] == {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}
    assert first.spec["swapBehavior"] == "NoSwap" and first.node_kind == "host"
    assert second.spec["workload"] == {**TEMPLATE["workload"], "mode": "streaming", "window": 2}
    assert second.node_kind == ANY_NODE and "swapBehavior" not in second.spec
    assert cell_row(first, None)["variant"] == "guaranteed"
    # another axis sets its field over the variant's, and multiplies the variants
    crossed = expand("s", sweep_spec(variants=variants, limits=["32Mi", "96Mi"]))
    assert [c.spec["resources"]["limits"]["memory"] for c in crossed] == ["32Mi"] * 2 + ["96Mi"] * 2
    assert TEMPLATE["workload"]["mode"] == "bulk"  # the template is never changed


def test_more_cells_than_the_cap_is_refused() -> None:
    limits = [f"{i}Mi" for i in range(1, 17)]
    sizes = [f"{i}Mi" for i in range(1, 14)]
    assert cell_count(sweep_spec(limits=limits, sizes=sizes)) == 16 * 13 > MAX_CELLS
    with pytest.raises(SweepError, match="at most 200"):
        expand("s", sweep_spec(limits=limits, sizes=sizes))


def test_no_axes_is_one_cell_the_template() -> None:
    (cell,) = expand("s", {"template": TEMPLATE})
    assert cell.spec == TEMPLATE


def test_a_template_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(SweepError):
        expand("s", {"template": "no", "axes": {}})


# --- names and labels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sweep", "index", "name"),
    [
        ("grid", 0, "grid-000"),
        ("grid", 199, "grid-199"),
        ("a" * 59, 7, "a" * 59 + "-007"),
        ("a" * 62 + "-", 1, "a" * 59 + "-001"),
        ("ab-" + "c" * 57, 3, "ab-" + "c" * 56 + "-003"),
    ],
)
def test_cell_names_are_deterministic_and_fit_63(sweep: str, index: int, name: str) -> None:
    assert cell_name(sweep, index) == name
    assert len(name) <= 63


def test_labels_name_the_sweep_and_the_cell() -> None:
    (cell,) = expand("grid", sweep_spec(limits=["64Mi"]))
    assert cell_labels("grid", cell) == {SWEEP_LABEL: "grid", CELL_LABEL: "0"}


def test_max_running_defaults_to_two() -> None:
    assert max_running({}) == 2
    assert max_running({"maxRunningPerNodeKind": 5}) == 5


# --- the documents (ExperimentSpec.to_document, the one writer) ---------------------------------


def test_plan_writes_each_valid_cell_through_the_one_writer() -> None:
    body = sweep_body(limits=["64Mi", "128Mi"])
    result = plan(body)
    assert result.error is None and result.invalid == {}
    for cell in result.cells:
        document = result.documents[cell.name]
        expected = ExperimentSpec.from_spec(cell.spec).to_document(
            cell.name, namespace="lab", labels={SWEEP_LABEL: "grid", CELL_LABEL: str(cell.index)}
        )
        assert document == expected


def test_plan_reports_a_cell_that_cannot_run_and_keeps_the_others() -> None:
    # a request above the limit: that one cell cannot run
    result = plan(sweep_body(limits=["32Mi", "128Mi"], requests=["64Mi"]))
    assert set(result.documents) == {"grid-001"}
    assert list(result.invalid) == ["grid-000"]
    assert "requests.memory" in result.invalid["grid-000"]


def test_plan_applies_the_operator_cap() -> None:
    result = plan(sweep_body(sizes=["16Mi", "2Gi"]), max_bytes=2**30)
    assert list(result.invalid) == ["grid-001"]
    assert "cap" in result.invalid["grid-001"]


def test_plan_of_a_sweep_over_the_cap_is_an_error_not_cells() -> None:
    result = plan(
        sweep_body(limits=[f"{i}Mi" for i in range(1, 16)], sizes=[f"{i}Mi" for i in range(1, 15)])
    )
    assert result.cells == [] and result.error is not None


# --- the scheduler ------------------------------------------------------------------------------


def cells_of(kinds: list[str]) -> list[Cell]:
    return [Cell(i, f"s-{i:03d}", kind, {}, {}) for i, kind in enumerate(kinds)]


@pytest.mark.parametrize(
    ("kinds", "phases", "limit", "started"),
    [
        # nothing yet: the first N of each kind, lowest index first
        (["A", "A", "A", "B", "B"], {}, 2, [0, 1, 3, 4]),
        (["A", "A", "A", "B", "B"], {}, 1, [0, 3]),
        # one A running, one A finished: one more A may start
        (["A", "A", "A", "A"], {"s-000": Phase.RUNNING, "s-001": Phase.COMPLETED}, 2, [2]),
        # created but no status yet counts as running
        (["A", "A", "A"], {"s-000": None, "s-001": Phase.PENDING}, 2, []),
        # everything finished or created: nothing
        (["A", "B"], {"s-000": Phase.OOM_KILLED, "s-001": Phase.INVALID}, 2, []),
        # a slow kind full does not hold back the other kind
        (["A", "A", "B", "B", "B"], {"s-000": Phase.RUNNING, "s-001": Phase.RUNNING}, 2, [2, 3]),
    ],
)
def test_cells_to_start(
    kinds: list[str], phases: dict[str, Phase | None], limit: int, started: list[int]
) -> None:
    chosen = cells_to_start(cells_of(kinds), phases, limit)
    assert [c.index for c in chosen] == started


def test_invalid_cells_are_never_started_nor_counted() -> None:
    cells = cells_of(["A", "A", "A"])
    chosen = cells_to_start(cells, {}, 2, skip=frozenset({"s-000"}))
    assert [c.index for c in chosen] == [1, 2]


def test_the_scheduler_is_idempotent_after_its_own_creations() -> None:
    cells = cells_of(["A"] * 5 + ["B"] * 3)
    first = cells_to_start(cells, {}, 2)
    phases: dict[str, Phase | None] = {c.name: None for c in first}
    assert cells_to_start(cells, phases, 2) == []


# --- the status ---------------------------------------------------------------------------------


def experiment(
    phase: str, predicted: str | None = None, observed: str | None = None, **k8s: Any
) -> dict[str, Any]:
    kubernetes = {
        key: value
        for key, value in {"predictedOutcome": predicted, "outcome": observed, **k8s}.items()
        if value is not None
    }
    return {"status": {"phase": phase, "kubernetes": kubernetes, "parity": {"result": "Match"}}}


@pytest.mark.parametrize(
    ("predicted", "observed", "held"),
    [
        ("OOMKilled", "OOMKilled", True),
        ("Completed", "OOMKilled", False),
        ("Borderline", "OOMKilled", None),
        (None, "Completed", None),
        ("Completed", None, None),
    ],
)
def test_prediction_held(predicted: str | None, observed: str | None, held: bool | None) -> None:
    kubernetes = {"predictedOutcome": predicted, "outcome": observed}
    assert prediction_held(kubernetes) is held


def test_a_row_shows_prediction_observation_swap_and_parity() -> None:
    (cell,) = expand("s", sweep_spec(limits=["64Mi"], swapBehaviors=["LimitedSwap"]))
    body = experiment(
        "Completed",
        "Completed",
        "Completed",
        swapLimitBytes=4096,
        predictedSwapBytes=4096,
        nodeName="vm",
    )
    body["status"]["swapCost"] = {"summary": "1.4x"}
    row = cell_row(cell, body)
    assert row == {
        "cell": 0,
        "experiment": "s-000",
        "nodeKind": "LimitedSwap",
        "limit": "64Mi",
        "swapBehavior": "LimitedSwap",
        "mode": "bulk",
        "size": "16Mi",
        "phase": "Completed",
        "node": "vm",
        "predicted": "Completed",
        "observed": "Completed",
        "predictedSwapBytes": 4096,
        "swapLimitBytes": 4096,
        "parity": "Match",
        "swapCost": "1.4x",
        "held": True,
    }


def test_summary_counts_outcomes_and_predictions_and_says_when_done() -> None:
    cells = expand("s", sweep_spec(limits=["32Mi", "64Mi", "128Mi", "256Mi"]))
    experiments = {
        "s-000": experiment("OOMKilled", "OOMKilled", "OOMKilled"),
        "s-001": experiment("Completed", "Completed", "Completed"),
        "s-002": experiment("Completed", "OOMKilled", "Completed"),
    }
    running = summarize(cells, {**experiments, "s-003": experiment("Running")}, {})
    assert running.done is False
    assert running.status["phase"] == SweepPhase.RUNNING
    assert running.status["progress"] == "3/4"
    assert running.status["running"] == 1
    done = summarize(
        cells, {**experiments, "s-003": experiment("Completed", "Completed", "Completed")}, {}
    )
    assert done.done is True
    assert done.status["phase"] == SweepPhase.DONE
    assert done.status["progress"] == "4/4"
    assert done.status["counts"] == {"OOMKilled": 1, "Completed": 3}
    assert (done.status["predictionsHeld"], done.status["predictionsMissed"]) == (3, 1)
    assert done.status["predictionsUnknown"] == 0
    assert done.status["running"] == 0
    assert [row["experiment"] for row in done.status["cells"]] == [c.name for c in cells]


def test_invalid_cells_finish_at_once_and_count_as_invalid() -> None:
    cells = expand("s", sweep_spec(limits=["32Mi", "64Mi"]))
    summary = summarize(
        cells, {"s-001": experiment("Completed", "Completed", "Completed")}, {"s-000": "why"}
    )
    assert summary.done is True
    assert summary.status["counts"] == {"Invalid": 1, "Completed": 1}
    assert summary.status["cells"][0]["message"] == "why"
    assert summary.status["predictionsUnknown"] == 1


def test_nothing_created_yet_is_pending() -> None:
    cells = expand("s", sweep_spec(limits=["32Mi"]))
    summary = summarize(cells, {}, {})
    assert summary.status["phase"] == SweepPhase.PENDING
    assert summary.status["progress"] == "0/1"


def test_sweep_document_is_an_oomsweep_the_plan_expands() -> None:
    template = {"workload": {"mode": "bulk"}, "resources": {"limits": {"memory": "64Mi"}}}
    axes = {"limits": ["64Mi", "96Mi"], "sizes": ["16Mi", "256Mi"]}
    body = sweep_document("grid", template=template, axes=axes, max_running=2)
    assert body["apiVersion"] == "oomlab.dev/v1alpha1" and body["kind"] == "OOMSweep"
    assert body["metadata"] == {"name": "grid"}
    assert body["spec"] == {"template": template, "axes": axes, "maxRunningPerNodeKind": 2}
    assert len(plan({**body, "metadata": {"name": "grid", "namespace": "lab"}}).cells) == 4
    labelled = sweep_document("g", template=template, axes=axes, max_running=1, labels={"a": "b"})
    assert labelled["metadata"] == {"name": "g", "labels": {"a": "b"}}
