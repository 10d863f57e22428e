"""The operator's freed memory goes back to the system (oomlab.operator.memory)."""

from __future__ import annotations

import asyncio
import platform

import pytest

from oomlab.operator import memory


def test_glibc_trims() -> None:
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("allowed skip: malloc_trim is glibc's; this C library has none")
    assert memory.give_back_freed_memory() is True


def test_a_c_library_without_malloc_trim_trims_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.give_back_freed_memory() is False
    # the periodic loop ends at once instead of waking up for nothing
    asyncio.run(asyncio.wait_for(memory.give_back_periodically(interval_s=3600), timeout=60))


def test_trims_everything_free_every_interval_until_cancelled() -> None:
    pads: list[int] = []

    async def three_trims() -> None:
        def trim(pad: int) -> int:
            pads.append(pad)
            if len(pads) == 3:
                trimmer.cancel()
            return 1

        trimmer = asyncio.ensure_future(memory.give_back_periodically(interval_s=0, trim=trim))
        with pytest.raises(asyncio.CancelledError):
            await trimmer

    asyncio.run(three_trims())
    assert pads == [0, 0, 0]  # pad 0: every whole free page, nothing kept at the heaps' tops
