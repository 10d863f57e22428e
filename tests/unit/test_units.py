from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from oomlab.rules.units import (
    UNLIMITED,
    SizeError,
    format_binary,
    human,
    parse_binary_size,
    parse_docker_memory_swap,
    parse_docker_size,
    parse_k8s_quantity,
)

MiB = 2**20


# What each size parser accepts, and what it makes of it.
ACCEPTED: dict[Callable[[Any], int], list[tuple[str | int, int]]] = {
    # Docker's sizes are binary and case-insensitive
    parse_docker_size: [
        ("500m", 500 * MiB),
        ("500M", 500 * MiB),
        ("500mb", 500 * MiB),
        ("500MB", 500 * MiB),
        ("500MiB", 500 * MiB),
        ("500 m", 500 * MiB),
        ("1g", 1024 * MiB),
        ("1.5g", 1536 * MiB),
        ("300M", 300 * MiB),
        ("1024k", MiB),
        ("1048576", MiB),
        ("1048576b", MiB),
    ],
    parse_k8s_quantity: [
        ("500Mi", 500 * MiB),
        ("1Gi", 1024 * MiB),
        ("500M", 500_000_000),
        ("1e9", 1_000_000_000),
        ("1.5Gi", 1536 * MiB),
        (524288000, 500 * MiB),
    ],
    parse_binary_size: [
        ("500Mi", 500 * MiB),
        ("1Gi", 2**30),
        ("1.5Gi", 1536 * MiB),
        ("4096", 4096),
        (7, 7),
    ],
}
# What each size parser refuses with a SizeError.
REJECTED: dict[Callable[[Any], int], list[str | bool]] = {
    # nonsense
    parse_docker_size: ["500x", "", "m", "-5m", "0", "0m", "five", "500 mb b"],
    # zero, negative and garbage
    parse_k8s_quantity: ["0", "-1Mi", "abc", "1Gi ", True],
    # anything ambiguous
    parse_binary_size: ["500m", "500M", "500MB", "1g", "0", "0Mi", "1.5Ki0", "0.3"],
}


@pytest.mark.parametrize(
    ("parse", "text", "expected"),
    [
        pytest.param(parse, text, expected, id=f"{parse.__name__}-{text}")
        for parse, rows in ACCEPTED.items()
        for text, expected in rows
    ],
)
def test_sizes_in_bytes(parse: Callable[[Any], int], text: str | int, expected: int) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        pytest.param(parse, text, id=f"{parse.__name__}-{text!r}")
        for parse, texts in REJECTED.items()
        for text in texts
    ],
)
def test_sizes_rejected(parse: Callable[[Any], int], text: str | bool) -> None:
    with pytest.raises(SizeError):
        parse(text)


def test_docker_memory_swap_minus_one_is_unlimited() -> None:
    assert parse_docker_memory_swap("-1") == UNLIMITED
    assert parse_docker_memory_swap("1g") == 1024 * MiB


def test_k8s_500m_is_half_a_byte_and_rejected_with_a_hint() -> None:
    with pytest.raises(SizeError) as info:
        parse_k8s_quantity("500m", field="limits.memory")
    message = str(info.value)
    assert "0.5 bytes" in message
    assert "500Mi" in message
    assert "milli" in message


def test_format_binary_round_trips() -> None:
    for value in (500 * MiB, 2**30, 1536 * MiB, 4097, 50 * 1024):
        assert parse_binary_size(format_binary(value)) == value
    assert format_binary(500 * MiB) == "500Mi"


def test_human() -> None:
    assert human(1000 * MiB) == "1000 MiB"
    assert human(2**30) == "1 GiB"
    assert human(None) == "unlimited"
    assert human(UNLIMITED) == "unlimited"
