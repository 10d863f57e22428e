"""Do Docker and Kubernetes agree on one experiment, and if not, why not, in one sentence."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from oomlab.rules.results import Outcome
from oomlab.rules.semantics import Allowance
from oomlab.rules.units import human


class Parity(StrEnum):
    MATCH = "Match"
    MISMATCH = "Mismatch"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class ParityResult:
    result: Parity
    explanation: str


_DECIDED = (Outcome.COMPLETED, Outcome.OOM_KILLED)


def _verb(outcome: Outcome) -> str:
    return "completes" if outcome == Outcome.COMPLETED else "is OOM-killed"


def compare(
    docker_outcome: Outcome | None,
    docker: Allowance | None,
    kubernetes_outcome: Outcome | None,
    kubernetes: Allowance | None,
    *,
    docker_source: str = "predicted",
) -> ParityResult:
    """Compare what Docker does (observed, else predicted) with what Kubernetes did."""
    if docker is None or docker_outcome is None:
        return ParityResult(
            Parity.UNKNOWN, "No Docker flags or Docker result to compare with (spec.docker)."
        )
    if kubernetes_outcome not in _DECIDED:
        what = (
            "has no result yet"
            if kubernetes_outcome is None
            else (f"ended {kubernetes_outcome.value}, which says nothing about memory limits")
        )
        return ParityResult(Parity.UNKNOWN, f"Kubernetes {what}.")
    if docker_outcome not in _DECIDED:
        return ParityResult(
            Parity.UNKNOWN,
            f"Docker ({docker_source}) ended {docker_outcome.value}, so there is nothing to "
            "compare.",
        )
    assert kubernetes_outcome is not None
    prefix = f"Docker ({docker_source}) {_verb(docker_outcome)}"
    if docker_outcome == kubernetes_outcome:
        return ParityResult(
            Parity.MATCH,
            f"Both agree: {prefix} and Kubernetes {_verb(kubernetes_outcome)}"
            + _allowance_note(docker, kubernetes)
            + ".",
        )
    return ParityResult(
        Parity.MISMATCH,
        f"{prefix} but Kubernetes {_verb(kubernetes_outcome)}: "
        + _why_differ(docker, kubernetes)
        + ".",
    )


def _allowance_note(docker: Allowance, kubernetes: Allowance | None) -> str:
    if kubernetes is None:
        return ""
    return (
        f" (Docker: {human(docker.memory_bytes)} + {_swap(docker)} swap; Kubernetes: "
        f"{human(kubernetes.memory_bytes)} + {_swap(kubernetes)} swap)"
    )


def _implicit(docker: Allowance) -> str:
    if not docker.implicit_swap:
        return ""
    return (
        " (--memory-swap is unset, and Docker's rule makes memory+swap 2 x --memory, "
        "so swap equal to --memory)"
    )


def _swap(allowance: Allowance) -> str:
    return "unlimited" if allowance.swap_bytes is None else human(allowance.swap_bytes)


def _no_swap_sentence(allowance: Allowance, otherwise: str) -> str:
    cause = allowance.no_swap_cause
    return otherwise if cause is None else cause.sentence


def _why_differ(docker: Allowance, kubernetes: Allowance | None) -> str:
    if kubernetes is None:
        return "the Kubernetes side's limits are unknown"
    if docker.memory_bytes != kubernetes.memory_bytes:
        return (
            f"Docker's --memory is {human(docker.memory_bytes)} but the pod's limit is "
            f"{human(kubernetes.memory_bytes)}"
        )
    docker_swap = docker.swap_bytes
    kube_swap = kubernetes.swap_bytes
    if kube_swap == 0 and docker_swap != 0:
        cause = _no_swap_sentence(kubernetes, "Kubernetes gives it no swap")
        return (
            f"Docker gives {_swap(docker)} of swap{_implicit(docker)}, Kubernetes none, "
            f"because {cause}"
        )
    if docker_swap == 0 and kube_swap != 0:
        cause = _no_swap_sentence(docker, "Docker gives it no swap")
        return f"Kubernetes gives {_swap(kubernetes)} of swap (LimitedSwap) but {cause}"
    if kube_swap is not None and (docker_swap is None or docker_swap > kube_swap):
        return (
            f"LimitedSwap gives only {human(kube_swap)} of swap (request / node memory x node "
            f"swap) where Docker gives {_swap(docker)}{_implicit(docker)}"
        )
    if docker_swap is not None and (kube_swap is None or kube_swap > docker_swap):
        return f"Kubernetes gives {_swap(kubernetes)} of swap where Docker gives {_swap(docker)}"
    return (
        "both give the same memory and swap, so the difference is in what else is charged to "
        "the container (runtime overhead, page cache) or the host's swap at the time"
    )
