"""Memory sizes in the two worlds oomlab straddles.

Docker reads ``500m`` as 500 MiB (binary multiples, case-insensitive suffix, optional ``b``/``ib``).
Kubernetes reads ``500m`` as 0.5 bytes (``m`` is milli) and ``500M`` as 500 * 10**6 bytes.
The same string can mean two very different things, so every parser here says which world it is
in and rejects what it cannot turn into a whole, positive number of bytes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from kubernetes.utils.quantity import parse_quantity

KiB = 1024
MiB = 1024**2
GiB = 1024**3

UNLIMITED = -1
"""Docker's ``--memory-swap=-1``: no limit on memory plus swap."""

DOCKER_MIN_MEMORY_BYTES = 6 * MiB
"""Docker refuses ``--memory`` below 6 MiB (``Minimum memory limit allowed is 6MB``)."""

_DOCKER_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?(?:i?b)?$", re.IGNORECASE)
_DOCKER_MULTIPLIER = {None: 1, "k": KiB, "m": MiB, "g": GiB, "t": 1024**4, "p": 1024**5}

_BINARY_SIZE = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)?$")
_BINARY_MULTIPLIER = {None: 1, "Ki": KiB, "Mi": MiB, "Gi": GiB, "Ti": 1024**4}


class SizeError(ValueError):
    """A size string that cannot be used, with a sentence saying what to write instead."""


def _number_and_unit(size: re.Pattern[str], text: str, problem: str) -> tuple[str, str | None]:
    """The number and the unit (None if absent) that ``size`` reads in ``text``; else
    :class:`SizeError` with ``problem`` as its sentence."""
    match = size.match(text.strip())
    if not match:
        raise SizeError(problem)
    number, unit = match.groups()
    return number, unit


def parse_docker_size(text: str, *, flag: str = "size") -> int:
    """Bytes for a Docker size string (``500m``, ``500mb``, ``500MiB``, ``1g``, ``1048576``).

    Follows Docker's own rules: suffixes are binary and case-insensitive; fractions are allowed
    and truncated to whole bytes.
    """
    number, unit = _number_and_unit(
        _DOCKER_SIZE,
        text,
        f"{flag} {text!r} is not a Docker size: use a number with an optional unit "
        "b, k, m, g (binary: 500m = 500 MiB), for example 500m or 1g",
    )
    value = int(Decimal(number) * _DOCKER_MULTIPLIER[unit.lower() if unit else None])
    if value <= 0:
        raise SizeError(f"{flag} {text!r} must be greater than zero")
    return value


def parse_docker_memory_swap(text: str) -> int:
    """Bytes for ``--memory-swap``; ``-1`` means unlimited and returns :data:`UNLIMITED`."""
    if text.strip() == "-1":
        return UNLIMITED
    return parse_docker_size(text, flag="--memory-swap")


def parse_docker_flags(
    memory: str | None, memory_swap: str | None
) -> tuple[int | None, int | None]:
    """Bytes for a ``--memory`` / ``--memory-swap`` pair as given (None where a flag is absent)."""
    return (
        None if memory is None else parse_docker_size(memory, flag="--memory"),
        None if memory_swap is None else parse_docker_memory_swap(memory_swap),
    )


def parse_k8s_quantity(text: str | int, *, field: str = "quantity") -> int:
    """Bytes for a Kubernetes memory quantity (``500Mi``, ``1G``, ``1e9``), via the client's parser.

    Rejects fractions of a byte, which is what a Docker habit like ``500m`` produces: in
    Kubernetes ``m`` means milli, so ``500m`` is half a byte.
    """
    if isinstance(text, bool):
        raise SizeError(f"{field} must be a quantity such as 500Mi, not {text!r}")
    try:
        value = parse_quantity(text)  # type: ignore[no-untyped-call]
    except (ValueError, InvalidOperation, TypeError):
        raise SizeError(
            f"{field} {text!r} is not a Kubernetes quantity: write for example 500Mi or 1Gi"
        ) from None
    if value != value.to_integral_value():
        hint = ""
        if isinstance(text, str) and text.strip().endswith("m"):
            hint = f" ('m' is milli in Kubernetes; for 500 MiB write {text.strip()[:-1]}Mi)"
        raise SizeError(
            f"{field} {text!r} is {value.normalize():f} bytes, not a whole number of bytes{hint}"
        )
    if value <= 0:
        raise SizeError(f"{field} {text!r} must be greater than zero")
    return int(value)


def parse_binary_size(text: str | int, *, field: str = "size") -> int:
    """Bytes for a workload size: binary units (``500Mi``, ``1.5Gi``) or plain bytes.

    Anything a reader could take two ways (``500m``, ``500M``, ``500MB``) is rejected.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise SizeError(f"{field} {text!r} must be greater than zero")
        return text
    number, unit = _number_and_unit(
        _BINARY_SIZE,
        str(text),
        f"{field} {text!r} is ambiguous: use binary units like 500Mi or 1Gi, "
        "or a plain number of bytes",
    )
    exact = Decimal(number) * _BINARY_MULTIPLIER[unit]
    if exact != exact.to_integral_value():
        raise SizeError(f"{field} {text!r} is not a whole number of bytes")
    if exact <= 0:
        raise SizeError(f"{field} {text!r} must be greater than zero")
    return int(exact)


def format_binary(num_bytes: int) -> str:
    """The shortest exact binary-unit spelling (``524288000`` -> ``500Mi``), else plain bytes."""
    for unit, factor in (("Ti", 1024**4), ("Gi", GiB), ("Mi", MiB), ("Ki", KiB)):
        if num_bytes >= factor and num_bytes % factor == 0:
            return f"{num_bytes // factor}{unit}"
    return str(num_bytes)


def human(num_bytes: int | None) -> str:
    """A rounded size for people: ``1000 MiB``, ``1.5 GiB``; ``unlimited`` for None or -1."""
    if num_bytes is None or num_bytes == UNLIMITED:
        return "unlimited"
    if abs(num_bytes) >= GiB and num_bytes % GiB == 0:
        return f"{num_bytes // GiB} GiB"
    if abs(num_bytes) >= 10 * GiB:
        return f"{num_bytes / GiB:.1f} GiB"
    if abs(num_bytes) >= MiB:
        return f"{num_bytes / MiB:.0f} MiB"
    if abs(num_bytes) >= KiB:
        return f"{num_bytes / KiB:.0f} KiB"
    return f"{num_bytes} B"
