"""Test tiers by folder: tests/unit (no services), tests/docker (a real engine), tests/e2e (a real
cluster from KUBECONFIG), tests/net (root: network namespaces). Each folder's tests get the
tier's marker automatically."""

from __future__ import annotations

from pathlib import Path

import pytest

TIERS = {"unit": "unit", "docker": "docker", "e2e": "e2e", "operator": "e2e", "net": "net"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, TIERS[tier]))
