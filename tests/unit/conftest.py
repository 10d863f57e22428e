"""The unit tier reaches no cluster and no engine, whatever the environment points at; and
test_hermetic proves it with a trapped run of the whole tier, started as soon as the tier is
collected so that it runs alongside (the tier's wall time is then about one run, not two)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hermetic import (
    INNER_RUN,
    TrappedRun,
    hermetic_tier,  # noqa: F401  (an autouse fixture: importing it applies it)
)

ROOT = Path(__file__).resolve().parents[2]
HERMETIC_TEST = "test_hermetic.py::test_the_unit_tier_reaches_nothing_the_environment_points_at"
TRAPPED_RUN = pytest.StashKey[TrappedRun]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The hermetic test blocks until the trapped run ends: run last, every other test runs
    # alongside the trapped run instead of after it.
    items.sort(key=lambda item: item.nodeid.endswith(HERMETIC_TEST))


def pytest_collection_finish(session: pytest.Session) -> None:
    if os.environ.get(INNER_RUN):
        return
    for item in session.items:
        if item.nodeid.endswith(HERMETIC_TEST):
            # The whole tier but this test, which would start it again.
            args = [str(Path(__file__).parent), "--deselect", item.nodeid]
            session.config.stash[TRAPPED_RUN] = TrappedRun(ROOT, args)


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(TRAPPED_RUN, None)
    if run is not None:
        run.stop()


@pytest.fixture
def trapped_tier_run(request: pytest.FixtureRequest) -> TrappedRun:
    """The trapped run of the whole unit tier (without test_hermetic), already under way."""
    if os.environ.get(INNER_RUN):
        pytest.skip("allowed skip: the trapped run itself")
    run = request.config.stash.get(TRAPPED_RUN, None)
    if run is None:
        pytest.fail(f"no trapped run was started: is {HERMETIC_TEST} still this test's id?")
    return run
