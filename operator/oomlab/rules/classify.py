"""How a container ended -> what happened to the experiment, in words a user understands.

:func:`classify_exit` is the one exit rule for every runner (Docker, podman, a pod): an OOM kill
the runtime reported, else exit 0, else an exit 137 with memory near the limit, which is called an
OOM kill *by evidence* (Kubernetes runtimes can leave ``terminated.reason`` out, podman 4.3 leaves
``State.OOMKilled`` false), and the reason says so. :func:`classify_pod` reads a pod's status
document around it.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from oomlab.rules.pressure import NodeOutcome
from oomlab.rules.results import Outcome
from oomlab.rules.units import SizeError, human, parse_k8s_quantity
from oomlab.rules.workload import EXIT_COMPLETED, exit_meaning


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


TERMINAL_PHASES = frozenset(phase.value for phase in Phase if phase.terminal)
"""status.phase values an experiment never leaves."""


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

EXIT_SIGKILL = 128 + signal.SIGKILL

OOM_EVIDENCE_FRACTION = 0.8
"""An exit 137 the runtime did not call an OOM kill counts as one when the memory last seen had
reached this share of the limit. What is seen lags the kill: memhog reports after each step (a
whole chunk in bulk mode) and the cgroup sampler polls every 50 ms, so the last value sits below
the limit by up to a step; a SIGKILL from anyone else (a user, a deadline) rarely lands that close
to it."""


@dataclass(frozen=True)
class ExitVerdict:
    outcome: Outcome
    reason: str
    """A CamelCase word: OOMKilled, OOMKilledByEvidence, Completed, Killed or Error."""
    sentence: str
    """Why, as a clause without a final period."""


def classify_exit(
    exit_code: int | None,
    *,
    oom_reported_by: str | None,
    used_bytes: int | None,
    limit_bytes: int | None,
    used_what: str,
) -> ExitVerdict:
    """The one exit rule for Docker, podman and pods.

    ``oom_reported_by`` names who said it was an OOM kill (None: nobody did); ``used_bytes`` is
    the memory last seen (``used_what`` says which: the workload's allocation, a cgroup's peak)
    against ``limit_bytes``.
    """
    if oom_reported_by:
        return ExitVerdict(
            Outcome.OOM_KILLED,
            "OOMKilled",
            f"the kernel OOM-killed the container at its memory limit (exit {exit_code}; "
            f"{oom_reported_by})",
        )
    if exit_code == EXIT_COMPLETED:
        return ExitVerdict(Outcome.COMPLETED, "Completed", "the workload completed")
    if exit_code == EXIT_SIGKILL:
        if (
            used_bytes is not None
            and limit_bytes is not None
            and used_bytes >= OOM_EVIDENCE_FRACTION * limit_bytes
        ):
            return ExitVerdict(
                Outcome.OOM_KILLED,
                "OOMKilledByEvidence",
                f"the container was SIGKILLed (exit 137) with {human(used_bytes)} {used_what} "
                f"against a {human(limit_bytes)} limit; the runtime did not report OOMKilled, so "
                "this is an OOM kill judged by evidence",
            )
        return ExitVerdict(
            Outcome.FAILED,
            "Killed",
            "the container was SIGKILLed (exit 137) without OOMKilled from the runtime and "
            "without memory near its limit, so something else killed it",
        )
    return ExitVerdict(
        Outcome.FAILED,
        "Error",
        f"the container failed: {exit_meaning(exit_code)} (exit {exit_code})",
    )


def sentence(clause: str) -> str:
    """A clause as a sentence: capitalised, with a final period."""
    return clause[:1].upper() + clause[1:] + "."


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
    kubelet_reason = term.get("reason") or ""
    verdict = classify_exit(
        exit_code,
        oom_reported_by="the runtime reported OOMKilled" if kubelet_reason == "OOMKilled" else None,
        used_bytes=allocated_bytes,
        limit_bytes=limit_bytes,
        used_what="allocated",
    )
    reason = verdict.reason
    if verdict.outcome != Outcome.OOM_KILLED and kubelet_reason:
        reason = kubelet_reason
    return PodVerdict(
        OUTCOME_PHASE[verdict.outcome],
        verdict.outcome,
        reason,
        sentence(verdict.sentence),
        exit_code=exit_code,
        signal=term.get("signal"),
        started_at=term.get("startedAt"),
        finished_at=term.get("finishedAt"),
        termination_message=term.get("message"),
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


# --------------------------------------------------------------------------------------------
# node-scale experiments: evicted, OOM-killed in which cgroup, or completed

_EVICTED_RESOURCE = re.compile(r"The node was low on resource: (?P<resource>[\w.-]+)\.")
_EVICTED_THRESHOLD = re.compile(
    r"Threshold quantity: (?P<threshold>-?[\w.]+), available: (?P<available>-?[\w.]+)\."
)
_EVICTED_CONTAINER = re.compile(
    r"Container (?P<name>\S+) was using (?P<usage>-?[\w.]+), request is (?P<request>-?[\w.]+),"
)


@dataclass(frozen=True)
class EvictionFacts:
    """What the kubelet's eviction message says (pkg/kubelet/eviction, evictionMessage)."""

    resource: str | None = None
    signal: str | None = None
    """memory.available for memory: the message names the resource, and memory.available and
    allocatableMemory.available share one threshold value."""
    threshold_bytes: int | None = None
    available_bytes: int | None = None
    usage_bytes: int | None = None
    """The first container over its request: its working set (memory, not swap)."""
    request_bytes: int | None = None


def _signed_bytes(text: str) -> int | None:
    negative = text.startswith("-")
    digits = text.removeprefix("-")
    if digits.strip("0") == "":
        return 0
    try:
        value = parse_k8s_quantity(digits)
    except SizeError:
        return None
    return -value if negative else value


def parse_eviction_message(message: str | None) -> EvictionFacts:
    """``The node was low on resource: memory. Threshold quantity: 100Mi, available: 85432Ki.
    Container workload was using 1203Mi, request is 400Mi, has larger consumption of memory.``"""
    text = message or ""
    resource = _EVICTED_RESOURCE.search(text)
    threshold = _EVICTED_THRESHOLD.search(text)
    container = _EVICTED_CONTAINER.search(text)
    name = resource.group("resource") if resource else None
    return EvictionFacts(
        resource=name,
        signal="memory.available" if name == "memory" else None,
        threshold_bytes=_signed_bytes(threshold.group("threshold")) if threshold else None,
        available_bytes=_signed_bytes(threshold.group("available")) if threshold else None,
        usage_bytes=_signed_bytes(container.group("usage")) if container else None,
        request_bytes=_signed_bytes(container.group("request")) if container else None,
    )


def classify_node_outcome(
    verdict: PodVerdict,
    *,
    limit_bytes: int | None,
    allocated_bytes: int | None,
    swap_used_bytes: int | None,
    system_oom: bool,
) -> tuple[NodeOutcome, str] | None:
    """Which of the node-pressure outcomes a finished pod had, and how that was told; None while
    it runs or when it failed otherwise.

    The runtime says OOMKilled for any OOM kill of the container's process (the kernel counts
    the kill in the victim's cgroup whoever invoked the killer), so the cgroup is told by
    evidence: the kubelet posts a SystemOOM event on the Node only for the global OOM killer;
    a kill with the workload's last allocation near its own limit is its own cgroup's; a kill
    below its limit (or with none) and no SystemOOM is the pods' cgroup at node allocatable.
    """
    if verdict.reason == "Evicted":
        facts = parse_eviction_message(verdict.message)
        available = human(facts.available_bytes) if facts.available_bytes is not None else "?"
        threshold = human(facts.threshold_bytes) if facts.threshold_bytes is not None else "?"
        return (
            NodeOutcome.EVICTED,
            f"the kubelet evicted the pod: {facts.signal or facts.resource or 'a signal'} was "
            f"{available} against its {threshold} threshold",
        )
    if verdict.outcome == Outcome.COMPLETED:
        if swap_used_bytes:
            return (
                NodeOutcome.COMPLETED_IN_SWAP,
                f"the workload completed with {human(swap_used_bytes)} in swap",
            )
        return NodeOutcome.COMPLETED, "the workload completed without swap"
    killed = verdict.outcome == Outcome.OOM_KILLED or verdict.exit_code == EXIT_SIGKILL
    if not killed:
        return None
    if system_oom:
        return (
            NodeOutcome.SYSTEM_OOM_KILLED,
            "the node's global OOM killer killed it (a SystemOOM event on the Node)",
        )
    near_limit = (
        limit_bytes is not None
        and allocated_bytes is not None
        and allocated_bytes >= OOM_EVIDENCE_FRACTION * limit_bytes
    )
    if near_limit:
        return (
            NodeOutcome.OOM_KILLED,
            f"OOM-killed in its own cgroup: it had allocated {human(allocated_bytes)} against "
            f"its {human(limit_bytes)} limit",
        )
    where = f"below its {human(limit_bytes)} limit" if limit_bytes is not None else "with no limit"
    return (
        NodeOutcome.ALLOCATABLE_OOM_KILLED,
        f"OOM-killed {where} and with no SystemOOM event on the Node: the pods' cgroup "
        "(node allocatable) ran out of memory",
    )
