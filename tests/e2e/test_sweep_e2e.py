"""OOMSweep on a real cluster with the deployed operator (issue 19's "must show"): a sweep over
the node kinds present reaches Done with every prediction held, `kubectl get oomsweep` shows the
columns, /metrics (scraped through the API server's service proxy) counts the experiments it ran,
deleting the sweep deletes its experiments, and an operator restart mid-sweep leaves one
experiment per cell."""

from __future__ import annotations

import re
from typing import Any

import pytest
from cluster import OPERATOR_DEPLOYMENT, OPERATOR_NAMESPACE, Namespace, kubectl
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab import wait_for
from oomlab.experiment import GROUP, PLURAL, VERSION
from oomlab.rules.nodes import SWAP_BEHAVIOR_LABEL
from oomlab.rules.sweep import CELL_LABEL, SWEEP_LABEL
from oomlab.sweep import SWEEP_KIND, SWEEP_PLURAL, sweep_document

METRICS_SERVICE = "oomlab-operator-metrics:metrics"
METRICS_PATH = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/services/{METRICS_SERVICE}/proxy/metrics"
SWEEP_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def swap_behaviors(api: client.ApiClient, operator: None) -> list[str]:
    """The node kinds present: NoSwap for any Ready node not labelled LimitedSwap, LimitedSwap
    for a Ready node labelled so."""
    kubectl("wait", "--for=condition=Established", "crd/oomsweeps.oomlab.dev", "--timeout=60s")
    kinds = set()
    for node in client.CoreV1Api(api).list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        if ready:
            label = (node.metadata.labels or {}).get(SWAP_BEHAVIOR_LABEL)
            kinds.add("LimitedSwap" if label == "LimitedSwap" else "NoSwap")
    return sorted(kinds)


def sweep(name: str, swap_behaviors: list[str], **template: Any) -> dict[str, Any]:
    """Far from the borderline on purpose: each size either fits its limit with room or is
    several times over it, so every prediction has to hold. No request: every pod is
    Guaranteed, so no node gives it swap."""
    workload = {"mode": "bulk", "chunk": "8Mi", "imagePullPolicy": "Never", **template}
    sizes = ["16Mi", "24Mi", "256Mi", "384Mi"]
    limits = ["64Mi", "96Mi"] if len(swap_behaviors) == 1 else ["64Mi"]
    return sweep_document(
        name,
        template={
            "workload": workload,
            "resources": {"limits": {"memory": "64Mi"}},
            "timeoutSeconds": 240,
        },
        axes={"limits": limits, "sizes": sizes, "swapBehaviors": swap_behaviors},
        max_running=2,
    )


def apply(ns: Namespace, body: dict[str, Any]) -> None:
    ns.custom.create_namespaced_custom_object(GROUP, VERSION, ns.name, SWEEP_PLURAL, body)


def sweep_status(ns: Namespace, name: str) -> dict[str, Any]:
    try:
        found = ns.custom.get_namespaced_custom_object(GROUP, VERSION, ns.name, SWEEP_PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return dict(found.get("status") or {})


def wait_done(ns: Namespace, name: str) -> dict[str, Any]:
    status: dict[str, Any] = wait_for(
        lambda: (s := sweep_status(ns, name)).get("phase") == "Done" and s,
        SWEEP_TIMEOUT_S,
        f"sweep {ns.name}/{name} to be Done",
        lambda: str({k: v for k, v in sweep_status(ns, name).items() if k != "cells"}),
    )
    return status


def experiments_of(ns: Namespace, name: str) -> list[dict[str, Any]]:
    listed = ns.custom.list_namespaced_custom_object(
        GROUP, VERSION, ns.name, PLURAL, label_selector=f"{SWEEP_LABEL}={name}"
    )
    return list(listed["items"])


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if labels.items() <= found.items():
            total += float(match.group(2))
    return total


def scrape() -> str:
    return kubectl("get", "--raw", METRICS_PATH).stdout


def test_a_sweep_reaches_done_with_every_prediction_held_and_metrics_count_it(
    ns: Namespace, swap_behaviors: list[str]
) -> None:
    apply(ns, sweep("grid", swap_behaviors))
    status = wait_done(ns, "grid")
    total = status["total"]
    assert total >= 8
    assert status["progress"] == f"{total}/{total}"
    assert status["predictionsHeld"] == total, status["cells"]
    assert status["predictionsMissed"] == 0
    assert sum(status["counts"].values()) == total
    assert set(status["counts"]) <= {"Completed", "OOMKilled"}
    assert {row["nodeKind"] for row in status["cells"]} == set(swap_behaviors)
    for row in status["cells"]:
        assert row["held"] is True and row["predicted"] == row["observed"], row
    (done,) = [c for c in status["conditions"] if c["type"] == "Done"]
    assert done["status"] == "True"
    experiments = experiments_of(ns, "grid")
    assert sorted(e["metadata"]["name"] for e in experiments) == [
        row["experiment"] for row in status["cells"]
    ]
    for body in experiments:
        (owner,) = body["metadata"]["ownerReferences"]
        assert owner["kind"] == SWEEP_KIND and owner["name"] == "grid"
        assert len(ns.pods_of(body["metadata"]["name"])) == 1

    table = kubectl("get", "oomsweep", "-n", ns.name).stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "DONE", "AGREEING", "MISSED", "PHASE"]
    assert table[1].split()[:5] == ["grid", f"{total}/{total}", str(total), "0", "Done"]

    text = scrape()
    for outcome, count in status["counts"].items():
        assert metric(text, "oomlab_experiments_finished_total", outcome=outcome) >= count
        assert metric(text, "oomlab_experiments", phase=outcome, outcome=outcome) >= count
    assert metric(text, "oomlab_predictions_total", result="held") >= total
    assert metric(text, "oomlab_status_latency_seconds_count") >= total
    assert metric(text, "oomlab_experiment_swap_limit_bytes", namespace=ns.name) == 0.0
    assert metric(text, "oomlab_sweeps", phase="Done") >= 1
    assert metric(text, "process_resident_memory_bytes") > 0
    series = sum(
        1 for line in text.splitlines() if line.startswith("oomlab_experiment_swap_limit_bytes{")
        and f'namespace="{ns.name}"' in line
    )  # fmt: skip
    assert series == sum(1 for row in status["cells"] if "swapLimitBytes" in row)

    # deleting the sweep deletes its experiments (garbage collection through the owner), and
    # their series leave /metrics
    ns.custom.delete_namespaced_custom_object(GROUP, VERSION, ns.name, SWEEP_PLURAL, "grid")
    wait_for(lambda: not experiments_of(ns, "grid"), 180, "the sweep's experiments to go")
    wait_for(lambda: f'namespace="{ns.name}"' not in scrape(), 60, "their series to leave /metrics")


def test_an_operator_restart_mid_sweep_leaves_one_experiment_per_cell(
    ns: Namespace, swap_behaviors: list[str]
) -> None:
    apply(ns, sweep("restart", swap_behaviors, hold=8))
    wait_for(
        lambda: (
            sweep_status(ns, "restart").get("running", 0) > 0
            and sweep_status(ns, "restart").get("finished", 0) < 4
        ),
        300,
        "the sweep to be under way",
        lambda: str(sweep_status(ns, "restart").get("progress")),
    )
    kubectl("-n", OPERATOR_NAMESPACE, "delete", "pod", "-l", "app.kubernetes.io/component=operator",
            "--wait=true")  # fmt: skip
    kubectl("-n", OPERATOR_NAMESPACE, "rollout", "status", f"deployment/{OPERATOR_DEPLOYMENT}",
            "--timeout=180s")  # fmt: skip
    status = wait_done(ns, "restart")
    experiments = experiments_of(ns, "restart")
    cells = [e["metadata"]["labels"][CELL_LABEL] for e in experiments]
    assert len(experiments) == status["total"] >= 8
    assert sorted(cells, key=int) == [str(i) for i in range(status["total"])]
    for body in experiments:
        assert len(ns.pods_of(body["metadata"]["name"])) == 1
    assert status["predictionsHeld"] == status["total"], status["cells"]


def test_a_sweep_over_the_cell_cap_is_refused_by_the_api_server(
    ns: Namespace, swap_behaviors: list[str]
) -> None:
    body = sweep("huge", swap_behaviors)
    body["spec"]["axes"]["limits"] = [f"{i}Mi" for i in range(64, 80)]
    body["spec"]["axes"]["sizes"] = [f"{i}Mi" for i in range(1, 14)]
    with pytest.raises(ApiException) as refused:
        apply(ns, body)
    assert refused.value.status == 422
    assert "at most 200 cells" in str(refused.value.body)
