"""What a kernel says about itself, as text, read into numbers and names (the reading is the
caller's: a probe container, a helper pod on a node, this machine)."""

from __future__ import annotations

KIB = 1024


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` (or some of its lines) in bytes, keyed by field name (``SwapTotal``,
    ``MemTotal``, ...); a line without a number is left out."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            factor = KIB if len(parts) > 1 and parts[1] == "kB" else 1
            values[key.strip()] = int(parts[0]) * factor
    return values


def parse_thp(text: str | None) -> str | None:
    """The selected mode of ``transparent_hugepage/enabled`` (``always [madvise] never``)."""
    for word in (text or "").split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None
