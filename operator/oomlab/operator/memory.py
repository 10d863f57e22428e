"""Handing the memory a burst of experiments used back to the system.

Measured on kind (README, "Operator memory"): 108 experiments created at once took the
operator from 65 to 172 MiB RSS, while its live Python objects at the peak were under 45 MiB
(tracemalloc) and a few MiB once the experiments were gone. The rest was glibc keeping freed
memory: a main heap grown from 16 to 49 MiB and 15 thread arenas holding 37 MiB for the API
threads, none of it given back, so the RSS stayed at the burst's peak for good.

Two remedies, both measured there: the image and the Deployment set ``MALLOC_ARENA_MAX=2`` (the
threads share two arenas instead of one each), and the operator calls glibc's ``malloc_trim(0)``
now and then, which returns every whole free page of every arena, not only a heap's top. Where
the C library has no ``malloc_trim`` (musl, macOS) nothing is trimmed.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("oomlab.operator.memory")

TRIM_INTERVAL_S = 30.0
"""How often freed memory goes back: a burst's memory is returned within this long, and one
trim (a walk over the heaps' free chunks) costs a few milliseconds."""


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc: Any = ctypes.CDLL(None)
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def give_back_freed_memory(trim: Callable[[int], int] | None = None) -> bool:
    """Return free heap pages to the system. False when the C library cannot trim (nothing was
    returned beyond what it does by itself)."""
    trim = trim if trim is not None else _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


async def give_back_periodically(
    interval_s: float = TRIM_INTERVAL_S, trim: Callable[[int], int] | None = None
) -> None:
    """Until cancelled: :func:`give_back_freed_memory` every ``interval_s`` seconds."""
    trim = trim if trim is not None else _malloc_trim()
    if trim is None:
        log.info("this C library has no malloc_trim: freed memory is returned as it sees fit")
        return
    while True:
        await asyncio.sleep(interval_s)
        give_back_freed_memory(trim)
