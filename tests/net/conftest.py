"""The net tier: the egress guard's logic, proven inside network namespaces the tests make.

Root only. Skips when not root (or without `ip`/`iptables`), unless OOMLAB_REQUIRE_NETNS=1
(`make test-net`, CI), where that is a failure. Nothing here reads or changes the real host's
tables except one read-only check that the host's own guard rules are the same afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from hermetic import hermetic_tier  # noqa: F401  (autouse: no cluster or engine here either)


def _unavailable(reason: str) -> None:
    if os.environ.get("OOMLAB_REQUIRE_NETNS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def netns_capable() -> None:
    if os.geteuid() != 0:
        _unavailable("network namespace tests need root")
    for tool in ("ip", "iptables", "iptables-restore"):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed")


def _host_guard_rules() -> list[str]:
    rules = subprocess.run(
        ["iptables", "-w", "10", "-S"], capture_output=True, text=True, check=True
    )
    return [line for line in rules.stdout.splitlines() if "OOMLAB-EGRESS" in line]


@pytest.fixture(scope="session", autouse=True)
def host_guard_untouched(netns_capable: None) -> Iterator[None]:
    """The real host's guard is the same after the tier as before: the tests stay in their
    namespaces."""
    before = _host_guard_rules()
    yield
    assert _host_guard_rules() == before
