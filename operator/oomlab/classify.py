"""A pod's status document -> what happened to the experiment, in words a user understands.

Kubernetes reports an OOM kill as ``state.terminated.reason == "OOMKilled"`` with exit code 137,
but some runtimes leave the reason out; then an exit 137 with the workload's memory near its limit
is called an OOM kill *by evidence*, and the reason says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from oomlab.results import Outcome
from oomlab.units import human


class Phase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    OOM_KILLED = "OOMKilled"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    INVALID = "Invalid"

    @property
    def terminal(self) -> bool:
        return self not in (Phase.PENDING, Phase.RUNNING)


OUTCOME_PHASE = {
    Outcome.COMPLETED: Phase.COMPLETED,
    Outcome.OOM_KILLED: Phase.OOM_KILLED,
    Outcome.FAILED: Phase.FAILED,
    Outcome.TIMED_OUT: Phase.TIMED_OUT,
    Outcome.REFUSED: Phase.FAILED,
}

# Waiting reasons that will not fix themselves: the experiment has failed, not stalled.
TERMINAL_WAITING = {
    "ErrImageNeverPull": "the image is not on the node and imagePullPolicy is Never",
    "InvalidImageName": "the image name is not valid",
    "CreateContainerConfigError": "the container's configuration is invalid",
    "CreateContainerError": "the runtime could not create the container",
    "RunContainerError": "the runtime could not start the container",
}

EVIDENCE_FRACTION = 0.8
"""An exit 137 counts as an OOM kill by evidence when the workload had reached this share of the
limit."""

EXIT_MEANING = {
    2: "the workload rejected its arguments",
    3: "the workload hit a MemoryError (Python could not allocate) and stopped itself",
}


@dataclass(frozen=True)
class PodVerdict:
    phase: Phase
    outcome: Outcome | None
    reason: str
    message: str
    exit_code: int | None = None
    signal: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    termination_message: str | None = None


def _container_status(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else None


def classify_pod(
    pod: Mapping[str, Any],
    *,
    limit_bytes: int | None = None,
    allocated_bytes: int | None = None,
) -> PodVerdict:
    """The experiment's phase and outcome for one pod status (a dict as the API returns it)."""
    status = pod.get("status") or {}
    pod_phase = status.get("phase", "Pending")
    pod_reason = status.get("reason") or ""
    container = _container_status(pod)
    state = (container or {}).get("state") or {}

    if pod_reason == "DeadlineExceeded":
        return PodVerdict(
            Phase.TIMED_OUT,
            Outcome.TIMED_OUT,
            "DeadlineExceeded",
            "The pod ran past its deadline (timeoutSeconds) and the kubelet stopped it.",
        )
    if pod_phase == "Failed" and pod_reason == "Evicted":
        return PodVerdict(
            Phase.FAILED,
            Outcome.FAILED,
            "Evicted",
            "The kubelet evicted the pod under node pressure, so the container's limit was never "
            f"tested: {status.get('message', '').strip() or 'no message'}",
        )
    if "terminated" in state:
        return _terminated(state["terminated"], limit_bytes, allocated_bytes)
    waiting = state.get("waiting") or {}
    waiting_reason = waiting.get("reason") or ""
    if waiting_reason in TERMINAL_WAITING:
        detail = (waiting.get("message") or "").strip()
        return PodVerdict(
            Phase.FAILED,
            Outcome.REFUSED if waiting_reason == "RunContainerError" else Outcome.FAILED,
            waiting_reason,
            f"The container never started: {TERMINAL_WAITING[waiting_reason]}"
            + (f" ({detail})" if detail else "")
            + ".",
        )
    if pod_phase == "Failed":
        return PodVerdict(
            Phase.FAILED,
            Outcome.FAILED,
            pod_reason or "PodFailed",
            f"The pod failed before its container ran: {status.get('message') or pod_reason}.",
        )
    if "running" in state:
        return PodVerdict(
            Phase.RUNNING,
            None,
            "Running",
            "The workload is running.",
            started_at=state["running"].get("startedAt"),
        )
    unscheduled = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ),
        None,
    )
    if unscheduled:
        return PodVerdict(
            Phase.PENDING,
            None,
            unscheduled.get("reason") or "Unschedulable",
            f"The pod is not scheduled yet: {unscheduled.get('message') or 'waiting for a node'}.",
        )
    return PodVerdict(
        Phase.PENDING,
        None,
        waiting_reason or "Pending",
        f"The pod is starting{': ' + waiting_reason if waiting_reason else ''}.",
    )


def _terminated(
    term: Mapping[str, Any], limit_bytes: int | None, allocated_bytes: int | None
) -> PodVerdict:
    exit_code = term.get("exitCode")
    reason = term.get("reason") or ""
    times = {
        "exit_code": exit_code,
        "signal": term.get("signal"),
        "started_at": term.get("startedAt"),
        "finished_at": term.get("finishedAt"),
        "termination_message": term.get("message"),
    }
    if reason == "OOMKilled":
        return PodVerdict(
            Phase.OOM_KILLED,
            Outcome.OOM_KILLED,
            "OOMKilled",
            f"The kernel OOM-killed the container at its memory limit (exit {exit_code}; the "
            "runtime reported OOMKilled).",
            **times,
        )
    if exit_code == 0:
        return PodVerdict(
            Phase.COMPLETED,
            Outcome.COMPLETED,
            reason or "Completed",
            "The workload completed.",
            **times,
        )
    if exit_code == 137:
        near_limit = (
            limit_bytes is not None
            and allocated_bytes is not None
            and allocated_bytes >= EVIDENCE_FRACTION * limit_bytes
        )
        if near_limit:
            return PodVerdict(
                Phase.OOM_KILLED,
                Outcome.OOM_KILLED,
                "OOMKilledByEvidence",
                "The container was SIGKILLed (exit 137) with "
                f"{human(allocated_bytes)} allocated against a {human(limit_bytes)} limit; the "
                "runtime did not report OOMKilled, so this is an OOM kill judged by evidence.",
                **times,
            )
        return PodVerdict(
            Phase.FAILED,
            Outcome.FAILED,
            reason or "Killed",
            "The container was SIGKILLed (exit 137) without OOMKilled from the runtime and "
            "without memory near its limit, so something else killed it.",
            **times,
        )
    meaning = EXIT_MEANING.get(exit_code or -1, f"the workload exited with code {exit_code}")
    return PodVerdict(
        Phase.FAILED,
        Outcome.FAILED,
        reason or "Error",
        f"The container failed: {meaning}.",
        **times,
    )


def explain_creation_error(status_code: int, message: str) -> tuple[Phase, str, str]:
    """Why the API server refused the experiment's pod: (phase, reason, sentence).

    A quota or limit-range refusal will not pass on a retry with the same spec, so it is Invalid.
    """
    lowered = message.lower()
    if status_code == 403 and "exceeded quota" in lowered:
        return (
            Phase.INVALID,
            "QuotaExceeded",
            "The namespace's ResourceQuota refused the experiment's pod; lower "
            f"resources.limits.memory or raise the quota ({message.strip()}).",
        )
    if status_code == 403 and ("limitrange" in lowered or "maximum memory" in lowered):
        return (
            Phase.INVALID,
            "LimitRange",
            f"The namespace's LimitRange refused the experiment's pod ({message.strip()}).",
        )
    if status_code in (400, 422):
        return (
            Phase.INVALID,
            "PodRejected",
            f"The API server rejected the experiment's pod as invalid ({message.strip()}).",
        )
    if status_code == 403:
        return (
            Phase.FAILED,
            "Forbidden",
            f"The operator may not create the pod here ({message.strip()}).",
        )
    return (Phase.PENDING, "Retrying", f"Creating the pod failed and will be retried ({message}).")
