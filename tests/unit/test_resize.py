"""spec.resize: when the operator resizes the running pod, what the pod's conditions say, and
status.kubernetes.resize with the swap limit memhog read before and after (VM node numbers:
request 400Mi -> 587,960,320 B of swap; 300Mi -> 440,967,168 B)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oomlab.experiment import ExperimentSpec
from oomlab.operator.config import OperatorConfig
from oomlab.operator.kubernetes_view import Observation, PodFacts
from oomlab.operator.resize_view import due_at, explain, kubelet_view, requested, section
from oomlab.operator.status import assemble
from oomlab.rules.classify import Phase
from oomlab.rules.nodes import NodeFacts
from oomlab.rules.results import CgroupVersion, Outcome, Progress
from oomlab.rules.semantics import SwapBehavior

MiB = 2**20
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
VM_NODE = NodeFacts(
    "oomlab-vm", 1_531_936_768, 2_147_479_552, SwapBehavior.LIMITED_SWAP, CgroupVersion.V2,
    "madvise", kubelet_version="v1.37.2",
)  # fmt: skip
RAW: dict[str, Any] = {
    "swapBehavior": "LimitedSwap",
    "workload": {"mode": "leak", "size": "300Mi", "step": "10Mi", "interval": 1.0},
    "resources": {"requests": {"memory": "400Mi"}, "limits": {"memory": "500Mi"}},
    "resize": {"memoryRequest": "300Mi", "afterSeconds": 10},
}
SPEC = ExperimentSpec.from_spec(RAW)
INFEASIBLE = "In-place resize of containers with swap is not supported."
BEFORE, AFTER_IF_FOLLOWED = 587_960_320, 440_967_168


def pod(*conditions: dict[str, str], running: str | None = None, request: str = "400Mi") -> dict:
    state = {"running": {"startedAt": running}} if running else {"waiting": {}}
    return {
        "status": {
            "conditions": list(conditions),
            "containerStatuses": [
                {"name": "workload", "state": state,
                 "resources": {"requests": {"memory": request}}}
            ],
        }
    }  # fmt: skip


PENDING = {"type": "PodResizePending", "status": "True", "reason": "Infeasible",
           "message": INFEASIBLE}  # fmt: skip


def test_due_after_the_container_started() -> None:
    assert due_at(SPEC, pod()) is None
    assert due_at(SPEC, pod(running="2026-12-03T12:00:00Z")) == datetime(
        2026, 12, 3, 12, 0, 10, tzinfo=UTC
    )
    plain = ExperimentSpec.from_spec({k: v for k, v in RAW.items() if k != "resize"})
    assert due_at(plain, pod(running="2026-12-03T12:00:00Z")) is None


def test_kubelet_view_reads_the_resize_conditions_and_running_request() -> None:
    assert kubelet_view(pod(PENDING)) == {
        "state": "Infeasible", "message": INFEASIBLE, "runningRequest": 400 * MiB,
    }  # fmt: skip
    progress = {"type": "PodResizeInProgress", "status": "True", "message": ""}
    assert kubelet_view(pod(progress, request="300Mi"))["state"] == "InProgress"
    assert kubelet_view(pod(request="300Mi")) == {"runningRequest": 300 * MiB}


def limits(*values: int | None) -> Progress:
    return Progress(swap_limits=tuple((float(i), v) for i, v in enumerate(values)))


def test_infeasible_resize_keeps_the_swap_limit_and_cites_upstream() -> None:
    record = requested(SPEC, "2026-12-03T12:00:10Z", None)
    got = section(SPEC, record, kubelet_view(pod(PENDING)), limits(BEFORE, BEFORE), VM_NODE)
    assert got is not None
    assert got["kubeletState"] == "Infeasible" and got["kubeletMessage"] == INFEASIBLE
    assert (got["swapLimitBefore"], got["swapLimitAfter"]) == (BEFORE, BEFORE)
    assert got["predictedSwapAfter"] == AFTER_IF_FOLLOWED
    assert got["swapLimitFollowed"] is False
    assert "kubernetes#130111" in got["explanation"]
    assert "(PodResizePending, Infeasible)" in got["explanation"]
    assert f"read {BEFORE} (561 MiB) before" in got["explanation"]


def test_an_applied_resize_says_whether_the_swap_limit_followed() -> None:
    record = requested(SPEC, "2026-12-03T12:00:10Z", None)
    seen = kubelet_view(pod(request="300Mi"))
    followed = section(SPEC, record, seen, limits(BEFORE, AFTER_IF_FOLLOWED), VM_NODE)
    assert followed is not None and followed["kubeletState"] == "Done"
    assert followed["swapLimitFollowed"] is True
    assert "the swap limit followed" in followed["explanation"]
    stuck = section(SPEC, record, seen, limits(BEFORE, BEFORE), VM_NODE)
    assert stuck is not None and "did NOT follow" in stuck["explanation"]


def test_an_api_refusal_is_recorded_with_its_message() -> None:
    record = requested(SPEC, "t", "pod updates may not change the QoS class")
    assert record["apiAccepted"] is False
    assert explain(record) == (
        "The API server refused the resize (memory request -> 300Mi): pod updates may not "
        "change the QoS class."
    )


def test_no_section_before_the_resize() -> None:
    assert section(SPEC, None, {}, None, VM_NODE) is None
    assert section(SPEC, {"memoryRequest": "300Mi"}, {}, None, VM_NODE) is None


def test_status_carries_the_resize_through_later_events() -> None:
    body: dict[str, Any] = {
        "apiVersion": "oomlab.dev/v1alpha1", "kind": "OOMExperiment",
        "metadata": {"name": "resize", "namespace": "lab", "uid": "u", "generation": 1},
        "spec": RAW,
        "status": {"phase": "Running",
                   "kubernetes": {"resize": requested(SPEC, "2026-12-03T12:00:10Z", None)}},
    }  # fmt: skip
    observation = Observation(
        phase=Phase.COMPLETED,
        outcome=Outcome.COMPLETED,
        exit_code=0,
        progress=Progress(
            allocated_bytes=300 * MiB, lines=33, swap_limits=((1.0, BEFORE), (30.0, BEFORE)),
            cgroup={"version": 2, "swap_limit_bytes": BEFORE},
        ),
        pod=PodFacts(name="oomx-resize", node_name="oomlab-vm", qos_class="Burstable",
                     resize=kubelet_view(pod(PENDING))),
    )  # fmt: skip
    status = assemble(body, SPEC, OperatorConfig(), NOW, observation=observation, node=VM_NODE)
    resize = status["kubernetes"]["resize"]
    assert resize["kubeletState"] == "Infeasible"
    assert resize["swapLimitAfter"] == BEFORE
    assert status["kubernetes"]["explanation"].count("kubernetes#130111") == 1
