"""The unit tier reaches no cluster and no engine, whatever the environment points at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hermetic import forget_clients, isolate


@pytest.fixture(autouse=True)
def hermetic(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    isolate(monkeypatch, tmp_path_factory.getbasetemp())
    yield
    forget_clients()
