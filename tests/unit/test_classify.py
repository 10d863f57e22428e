"""Pod status documents, as the API server returns them, -> the experiment's phase and outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from oomlab.rules.classify import (
    OOM_EVIDENCE_FRACTION,
    Phase,
    classify_exit,
    classify_pod,
    explain_creation_error,
)
from oomlab.rules.results import Outcome
from oomlab.rules.workload import parse_lines

FIXTURES = Path(__file__).parent / "fixtures" / "pods"
MiB = 2**20
LIMIT = 500 * MiB


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((FIXTURES / name).read_text())
    return document


def allocated_from_message(pod: dict[str, Any]) -> int | None:
    """What the operator does: memhog's last lines from the termination message."""
    for status in pod["status"].get("containerStatuses") or []:
        terminated = status.get("state", {}).get("terminated") or {}
        if terminated.get("message"):
            return parse_lines(terminated["message"].splitlines()).allocated_bytes
    return None


@pytest.mark.parametrize(
    ("fixture", "phase", "outcome", "reason", "exit_code"),
    [
        ("oomkilled.yaml", Phase.OOM_KILLED, Outcome.OOM_KILLED, "OOMKilled", 137),
        (
            "exit137-near-limit.yaml",
            Phase.OOM_KILLED,
            Outcome.OOM_KILLED,
            "OOMKilledByEvidence",
            137,
        ),
        ("exit137-far-from-limit.yaml", Phase.FAILED, Outcome.FAILED, "Error", 137),
        ("completed.yaml", Phase.COMPLETED, Outcome.COMPLETED, "Completed", 0),
        ("memory-error.yaml", Phase.FAILED, Outcome.FAILED, "Error", 3),
        ("evicted.yaml", Phase.FAILED, Outcome.FAILED, "Evicted", None),
        ("deadline-exceeded.yaml", Phase.TIMED_OUT, Outcome.TIMED_OUT, "DeadlineExceeded", None),
        ("err-image-never-pull.yaml", Phase.FAILED, Outcome.FAILED, "ErrImageNeverPull", None),
        ("create-container-error.yaml", Phase.FAILED, Outcome.FAILED, "CreateContainerError", None),
        ("run-container-error.yaml", Phase.FAILED, Outcome.REFUSED, "RunContainerError", None),
        ("unschedulable.yaml", Phase.PENDING, None, "Unschedulable", None),
        ("running.yaml", Phase.RUNNING, None, "Running", None),
    ],
)
def test_pod_documents_classify(
    fixture: str, phase: Phase, outcome: Outcome | None, reason: str, exit_code: int | None
) -> None:
    pod = load(fixture)
    verdict = classify_pod(pod, limit_bytes=LIMIT, allocated_bytes=allocated_from_message(pod))
    assert (verdict.phase, verdict.outcome, verdict.reason) == (phase, outcome, reason)
    assert verdict.exit_code == exit_code
    assert verdict.message.endswith(".") or verdict.message.endswith(")")


def test_oom_kill_without_reason_says_it_was_judged_by_evidence() -> None:
    pod = load("exit137-near-limit.yaml")
    verdict = classify_pod(pod, limit_bytes=LIMIT, allocated_bytes=allocated_from_message(pod))
    assert "by evidence" in verdict.message
    assert "500 MiB allocated against a 500 MiB limit" in verdict.message


def test_exit_137_without_progress_is_not_called_an_oom_kill() -> None:
    pod = load("exit137-near-limit.yaml")
    verdict = classify_pod(pod, limit_bytes=LIMIT, allocated_bytes=None)
    assert verdict.phase == Phase.FAILED
    assert "something else killed it" in verdict.message


def test_oomkilled_keeps_times_and_the_termination_message() -> None:
    verdict = classify_pod(load("oomkilled.yaml"), limit_bytes=LIMIT)
    assert verdict.started_at == "2026-11-25T20:40:02Z"
    assert verdict.finished_at == "2026-11-25T20:40:03Z"
    assert verdict.termination_message is not None
    progress = parse_lines(verdict.termination_message.splitlines())
    assert progress.allocated_bytes == 500 * MiB
    assert progress.summary_status is None  # killed: no summary line


def test_image_never_pull_message_carries_the_kubelet_detail() -> None:
    verdict = classify_pod(load("err-image-never-pull.yaml"))
    assert "imagePullPolicy is Never" in verdict.message
    assert "oomlab/memhog:missing" in verdict.message


def test_evicted_says_the_limit_was_never_tested() -> None:
    verdict = classify_pod(load("evicted.yaml"))
    assert "never tested" in verdict.message
    assert "low on resource: memory" in verdict.message


def test_unschedulable_carries_the_scheduler_message() -> None:
    verdict = classify_pod(load("unschedulable.yaml"))
    assert "Insufficient memory" in verdict.message


def test_quota_rejection_is_invalid_and_says_what_to_change() -> None:
    status = load("quota-rejection.yaml")
    phase, reason, sentence = explain_creation_error(status["code"], status["message"])
    assert (phase, reason) == (Phase.INVALID, "QuotaExceeded")
    assert "lower resources.limits.memory or raise the quota" in sentence
    assert "limited: limits.memory=256Mi" in sentence


@pytest.mark.parametrize(
    ("code", "message", "phase", "reason"),
    [
        (
            422,
            'Pod "x" is invalid: spec.containers[0].image: Required value',
            Phase.INVALID,
            "PodRejected",
        ),
        (
            403,
            'pods "x" is forbidden: User "system:serviceaccount:lab:oomlab" cannot create',
            Phase.FAILED,
            "Forbidden",
        ),
        (500, "etcdserver: request timed out", Phase.PENDING, "Retrying"),
        (429, "too many requests", Phase.PENDING, "Retrying"),
    ],
)
def test_other_creation_errors(code: int, message: str, phase: Phase, reason: str) -> None:
    assert explain_creation_error(code, message)[:2] == (phase, reason)


@pytest.mark.parametrize(
    ("used", "outcome", "reason"),
    [
        (int(OOM_EVIDENCE_FRACTION * LIMIT), Outcome.OOM_KILLED, "OOMKilledByEvidence"),
        (int(OOM_EVIDENCE_FRACTION * LIMIT) - 1, Outcome.FAILED, "Killed"),
        (None, Outcome.FAILED, "Killed"),
    ],
)
def test_one_evidence_threshold_for_every_runner(
    used: int | None, outcome: Outcome, reason: str
) -> None:
    for used_what in ("allocated", "at the cgroup's peak"):
        verdict = classify_exit(
            137, oom_reported_by=None, used_bytes=used, limit_bytes=LIMIT, used_what=used_what
        )
        assert (verdict.outcome, verdict.reason) == (outcome, reason)


def test_a_reported_oom_kill_needs_no_evidence() -> None:
    verdict = classify_exit(
        137, oom_reported_by="the runtime said so", used_bytes=None, limit_bytes=None,
        used_what="allocated",
    )  # fmt: skip
    assert verdict.outcome == Outcome.OOM_KILLED
    assert "the runtime said so" in verdict.sentence
