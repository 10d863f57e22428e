"""Test tiers by folder: tests/unit (no services), tests/docker (a real engine), tests/e2e (a real
cluster from KUBECONFIG), tests/net (root: network namespaces). Each folder's tests get the
tier's marker automatically. Under OOMLAB_STRICT_SKIPS=1 (make test) a skip fails its test unless
its reason starts "allowed skip: " (see the end of this file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TIERS = {"unit": "unit", "docker": "docker", "e2e": "e2e", "operator": "e2e", "net": "net"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, TIERS[tier]))


# --- no silent skips: under OOMLAB_STRICT_SKIPS=1 (make test sets it) a skip fails its test -----
# A test that cannot run where it is required fails through its REQUIRE guard; any other skip
# there must say why it is fine, with a reason that starts "allowed skip: ".
STRICT_SKIPS = "OOMLAB_STRICT_SKIPS"
ALLOWED_SKIP = "allowed skip: "


def skip_failure(reason: str, strict: bool) -> str | None:
    """Why a skip with this reason fails its test, or None when the skip may stand."""
    if not strict or reason.startswith(ALLOWED_SKIP):
        return None
    return (
        f"skipped under {STRICT_SKIPS}=1 ({reason}): a test that cannot run here must fail "
        f"through its REQUIRE guard, or its reason must start {ALLOWED_SKIP!r} and say why"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if report.skipped and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2].removeprefix("Skipped: ")
        failure = skip_failure(reason, os.environ.get(STRICT_SKIPS) == "1")
        if failure:
            report.outcome = "failed"
            report.longrepr = failure
    return report
