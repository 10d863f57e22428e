"""status.swapCost and the unconstrained twin's pod: pure rules (the handlers are in
test_operator_handlers.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from oomlab.experiment import ExperimentSpec, InvalidSpec, build_pod, pod_name
from oomlab.operator.config import OperatorConfig
from oomlab.operator.kubernetes_view import Observation, PodFacts
from oomlab.operator.status import assemble, rejected_status
from oomlab.operator.swapcost_view import (
    STATE_DONE,
    STATE_MEASURING,
    STATE_WAITING,
    VERDICTS,
    after_run,
    after_twin,
    twin_lost,
    twin_started,
)
from oomlab.operator.twin import (
    LABEL_ROLE,
    ROLE_TWIN,
    build_twin_pod,
    is_twin,
    twin_memory_limit,
    twin_pod_name,
)
from oomlab.rules.classify import Phase
from oomlab.rules.results import Outcome, Progress, SwapActivity
from oomlab.rules.swapcost import CostVerdict, cost_against_twin

MiB = 2**20
UID = "4be0a3e2-8f3a-4d7e-b1a3-6d2f0c9e5a10"
NOW = datetime(2026, 11, 26, 16, 0, 0, tzinfo=UTC)
SWAPPED_V2 = SwapActivity(swapin_bytes=300 * MiB, swapout_bytes=450 * MiB, swapin_scope="system",
                          major_faults=76_800, swap_bytes_at_end=160 * MiB)  # fmt: skip
LIMITED = {
    "swapBehavior": "LimitedSwap",
    "measureSwapCost": True,
    "workload": {"mode": "bulk", "size": "400Mi", "chunk": "100Mi", "reaccess": 1},
    "resources": {"requests": {"memory": "200Mi"}, "limits": {"memory": "250Mi"}},
    "runtimeClassName": "crun",
    "tolerations": [{"key": "lab", "operator": "Exists", "effect": "NoSchedule"}],
    "timeoutSeconds": 600,
}


def progress(allocate_s: float, reaccess_s: float | None, swap: SwapActivity | None) -> Progress:
    return Progress(allocate_s=allocate_s, reaccess_s=reaccess_s, swap=swap)


# --- the cost from two working times and the main run's counters --------------------------------


def test_cost_against_twin_is_the_ratio_of_working_times() -> None:
    cost = cost_against_twin(12.2, SWAPPED_V2, 2.0, Outcome.COMPLETED)
    assert cost.verdict == CostVerdict.COSTLY
    assert cost.ratio == pytest.approx(6.1)
    assert cost.sentence.startswith("swap saved it at 6.1 times the cost: 12.20 s vs 2.00 s")
    assert "300 MiB swapped in (system-wide count), 76,800 major faults" in cost.sentence


def test_cost_against_a_twin_that_failed_has_no_baseline() -> None:
    cost = cost_against_twin(12.2, SWAPPED_V2, None, Outcome.OOM_KILLED)
    assert (cost.verdict, cost.ratio) == (CostVerdict.NO_BASELINE, None)
    assert "the unconstrained run ended OOMKilled" in cost.sentence


# --- the section: after the experiment's own run -------------------------------------------------


def test_a_completion_that_used_swap_waits_for_the_twin_with_its_numbers_recorded() -> None:
    section = after_run(Outcome.COMPLETED, "Completed", progress(10.0, 2.2, SWAPPED_V2), 280 * MiB)
    assert section == {
        "state": STATE_MEASURING,
        "summary": "measuring",
        "message": section["message"],
        "workSeconds": 12.2,
        "swapInBytes": 300 * MiB,
        "swapOutBytes": 450 * MiB,
        "swapCountScope": "system",
        "majorFaults": 76_800,
        "swapBytesAtEnd": 160 * MiB,
    }


def test_no_swap_given_means_no_cost_to_measure_and_no_twin() -> None:
    # a cgroup v1 NoSwap node: memsw == memory, so the workload read a swap limit of 0
    nothing = SwapActivity(0, 0, "system", 12, 0)
    section = after_run(Outcome.COMPLETED, "Completed", progress(1.0, None, nothing), 0)
    assert (section["state"], section["verdict"], section["summary"]) == (
        STATE_DONE, "NoSwapUsed", "no swap")  # fmt: skip
    assert section["message"] == (
        "No swap used; no cost to measure: the node gave the container no swap (swap limit 0)."
    )
    assert "ratio" not in section


def test_a_run_that_fit_in_memory_used_no_swap() -> None:
    fit = SwapActivity(0, 0, "system", 0, 0)
    section = after_run(Outcome.COMPLETED, "Completed", progress(1.0, None, fit), 300 * MiB)
    assert section["verdict"] == "NoSwapUsed"
    assert "fit in its memory limit" in section["message"]


@pytest.mark.parametrize(
    ("limit", "words"),
    [
        (0, "No swap to save it: the node gave the container none (swap limit 0); OOMKilled"),
        (280 * MiB, "Swap did not save it: OOMKilled (OOMKilled)."),
    ],
)
def test_a_run_that_was_killed_was_not_saved(limit: int, words: str) -> None:
    section = after_run(Outcome.OOM_KILLED, "OOMKilled", None, limit)
    assert (section["state"], section["verdict"], section["summary"]) == (
        STATE_DONE, "NotSaved", "not saved")  # fmt: skip
    assert section["message"].startswith(words)


def test_unknown_swap_use_still_measures() -> None:
    section = after_run(Outcome.COMPLETED, "Completed", progress(3.0, None, None), None)
    assert section["state"] == STATE_MEASURING


# --- the section: after the twin -----------------------------------------------------------------


def measuring() -> dict[str, Any]:
    section = after_run(Outcome.COMPLETED, "Completed", progress(10.0, 2.2, SWAPPED_V2), 280 * MiB)
    return twin_started(
        section, pod_name="oomx-twin-x-1", node_name="vm", memory_bytes=668 * MiB,
        created_at="2026-11-26T16:00:00Z",
    )  # fmt: skip


def test_the_twin_gives_the_ratio_the_summary_and_the_sentence() -> None:
    twin = progress(1.6, 0.4, SwapActivity(0, 0, "system", 3, 0))
    done = after_twin(measuring(), Outcome.COMPLETED, "Completed", twin, "2026-11-26T16:01:00Z")
    assert done["state"] == STATE_DONE
    assert (done["verdict"], done["ratio"], done["summary"]) == ("Costly", 6.1, "6.1x")
    assert (done["workSeconds"], done["twinWorkSeconds"]) == (12.2, 2.0)
    assert done["twinOutcome"] == "Completed"
    assert done["twinPodName"] == "oomx-twin-x-1"
    assert done["message"].startswith("Swap saved it at 6.1 times the cost: 12.20 s vs 2.00 s")
    assert done["message"].endswith(".")
    assert done["swapInBytes"] == 300 * MiB  # the experiment's own traffic, not the twin's


def test_a_cheap_run_says_so() -> None:
    done = after_twin(measuring(), Outcome.COMPLETED, "Completed", progress(10.0, 0.0, None), None)
    assert (done["verdict"], done["summary"]) == ("Cheap", "1.2x")


def test_a_twin_that_did_not_complete_gives_no_baseline() -> None:
    done = after_twin(measuring(), Outcome.TIMED_OUT, "DeadlineExceeded", None, None)
    assert (done["verdict"], done["summary"], done["twinOutcome"]) == (
        "NoBaseline", "no baseline", "TimedOut")  # fmt: skip
    assert "ratio" not in done
    assert done["message"] == (
        "No slowdown to report: the unconstrained run ended TimedOut (DeadlineExceeded)."
    )


def test_a_lost_twin_gives_no_baseline_with_the_reason() -> None:
    done = twin_lost(measuring(), "the twin pod was deleted before it finished", "t")
    assert done["message"] == "No slowdown to report: the twin pod was deleted before it finished."
    assert (done["state"], done["verdict"]) == (STATE_DONE, "NoBaseline")


# --- the section in the assembled status ---------------------------------------------------------


def body(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    meta = {"name": "cost", "namespace": "lab", "uid": UID, "generation": 1}
    return {"metadata": meta, "spec": spec, "status": status or {}}


def test_status_has_no_swap_cost_unless_asked() -> None:
    spec = {**LIMITED, "measureSwapCost": False}
    status = assemble(body(spec), ExperimentSpec.from_spec(spec), OperatorConfig(), NOW)
    assert "swapCost" not in status


def test_status_waits_then_records_the_run_then_keeps_what_it_recorded() -> None:
    spec = ExperimentSpec.from_spec(LIMITED)
    pending = assemble(body(LIMITED), spec, OperatorConfig(), NOW)
    assert pending["swapCost"]["state"] == STATE_WAITING
    completed = Observation(
        phase=Phase.COMPLETED, reason="Completed", outcome=Outcome.COMPLETED, exit_code=0,
        progress=progress(10.0, 2.2, SWAPPED_V2), pod=PodFacts(name="p", node_name="vm"),
    )  # fmt: skip
    ended = assemble(body(LIMITED, pending), spec, OperatorConfig(), NOW, observation=completed)
    assert ended["phase"] == "Completed"
    assert (ended["swapCost"]["state"], ended["swapCost"]["workSeconds"]) == (STATE_MEASURING, 12.2)
    recorded = {**ended, "swapCost": {**ended["swapCost"], "twinPodName": "t"}}
    again = assemble(body(LIMITED, recorded), spec, OperatorConfig(), NOW)
    assert again["swapCost"] == recorded["swapCost"]


def test_an_experiment_whose_pod_was_refused_waits_for_no_cost() -> None:
    spec = ExperimentSpec.from_spec(LIMITED)
    status = rejected_status(
        body(LIMITED), phase=Phase.FAILED, reason="Forbidden", message="no", now=NOW,
        spec_valid=True, spec=spec, config=OperatorConfig(),
    )  # fmt: skip
    assert "swapCost" not in status


# --- the spec ------------------------------------------------------------------------------------


def test_measure_swap_cost_and_reaccess_are_read_from_the_spec() -> None:
    spec = ExperimentSpec.from_spec(LIMITED)
    assert spec.measure_swap_cost is True
    assert spec.workload.reaccess == 1
    assert build_pod("cost", "lab", UID, spec)["spec"]["containers"][0]["args"][-2:] == [
        "--reaccess", "1"]  # fmt: skip
    assert ExperimentSpec.from_spec({**LIMITED, "measureSwapCost": None}).measure_swap_cost is False


def test_measure_swap_cost_must_be_a_boolean() -> None:
    with pytest.raises(InvalidSpec) as error:
        ExperimentSpec.from_spec({**LIMITED, "measureSwapCost": "yes"})
    assert error.value.field == "spec.measureSwapCost"


def required_node_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    affinity = pod["spec"]["affinity"]["nodeAffinity"]
    terms: list[dict[str, Any]] = affinity["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    return terms


# --- the twin pod --------------------------------------------------------------------------------


def test_twin_pod_is_the_same_workload_guaranteed_with_memory_enough_on_the_same_node() -> None:
    spec = ExperimentSpec.from_spec(LIMITED)
    main = build_pod("cost", "lab", UID, spec)
    twin = build_twin_pod("cost", "lab", UID, spec, "oomlab-vm-node")
    assert twin["metadata"]["name"] == twin_pod_name("cost", UID) != pod_name("cost", UID)
    assert twin["metadata"]["labels"] == {**main["metadata"]["labels"], LABEL_ROLE: ROLE_TWIN}
    assert is_twin(twin) and not is_twin(main)
    container, main_container = twin["spec"]["containers"][0], main["spec"]["containers"][0]
    assert container["args"] == main_container["args"]
    assert container["image"] == main_container["image"]
    assert container["securityContext"] == main_container["securityContext"]
    # demand 400Mi + 12Mi interpreter, + 256Mi headroom; request == limit: Guaranteed, no swap
    assert twin_memory_limit(spec) == 668 * MiB
    assert container["resources"] == {
        "limits": {"memory": "668Mi", "cpu": "250m"},
        "requests": {"memory": "668Mi", "cpu": "250m"},
    }
    for key in ("runtimeClassName", "tolerations", "nodeSelector", "activeDeadlineSeconds"):
        assert twin["spec"][key] == main["spec"][key], key
    terms = twin["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms == {
        "nodeSelectorTerms": [
            {
                "matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["oomlab-vm-node"]}
                ]
            }
        ]
    }


def test_twin_pinning_keeps_the_no_swap_placement_term() -> None:
    spec = ExperimentSpec.from_spec({**LIMITED, "swapBehavior": "NoSwap", "tolerations": []})
    twin = build_twin_pod("cost", "lab", UID, spec, "oomlab-node")
    (term,) = required_node_terms(twin)
    assert term["matchExpressions"][0]["operator"] == "NotIn"
    assert term["matchFields"][0]["values"] == ["oomlab-node"]


def test_twin_memory_is_never_below_the_experiments_limit() -> None:
    spec = ExperimentSpec.from_spec({**LIMITED, "resources": {"limits": {"memory": "2Gi"}}})
    assert twin_memory_limit(spec) == 2048 * MiB


@pytest.mark.parametrize("name", ["cost", "x" * 63, "Weird.Name"])
def test_twin_pod_name_is_a_short_stable_dns_label(name: str) -> None:
    twin = twin_pod_name(name, UID)
    assert len(twin) <= 63 and twin.startswith("oomx-twin-")
    assert twin == twin_pod_name(name, UID)


def test_every_field_the_section_writes_is_in_the_crd() -> None:
    # status.swapCost is a closed object in the CRD: a field missing there would be pruned
    crd = yaml.safe_load(
        (Path(__file__).parents[2] / "manifests/crd/oomexperiments.yaml").read_text()
    )
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["swapCost"]
    twin = progress(1.6, 0.4, SwapActivity(0, 0, "system", 3, 0))
    done = after_twin(measuring(), Outcome.COMPLETED, "Completed", twin, "2026-11-26T16:01:00Z")
    written = (
        set(done) | set(twin_lost(measuring(), "x", "t")) | set(after_run(None, None, None, 0))
    )
    assert written <= set(schema["properties"])
    assert set(VERDICTS.values()) == set(schema["properties"]["verdict"]["enum"])
