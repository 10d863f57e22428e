from __future__ import annotations

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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
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
)
def test_docker_sizes_are_binary_and_case_insensitive(text: str, expected: int) -> None:
    assert parse_docker_size(text) == expected


@pytest.mark.parametrize("text", ["500x", "", "m", "-5m", "0", "0m", "five", "500 mb b"])
def test_docker_rejects_nonsense(text: str) -> None:
    with pytest.raises(SizeError):
        parse_docker_size(text)


def test_docker_memory_swap_minus_one_is_unlimited() -> None:
    assert parse_docker_memory_swap("-1") == UNLIMITED
    assert parse_docker_memory_swap("1g") == 1024 * MiB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500Mi", 500 * MiB),
        ("1Gi", 1024 * MiB),
        ("500M", 500_000_000),
        ("1e9", 1_000_000_000),
        ("1.5Gi", 1536 * MiB),
        (524288000, 500 * MiB),
    ],
)
def test_k8s_quantities(text: str | int, expected: int) -> None:
    assert parse_k8s_quantity(text) == expected


def test_k8s_500m_is_half_a_byte_and_rejected_with_a_hint() -> None:
    with pytest.raises(SizeError) as info:
        parse_k8s_quantity("500m", field="limits.memory")
    message = str(info.value)
    assert "0.5 bytes" in message
    assert "500Mi" in message
    assert "milli" in message


@pytest.mark.parametrize("text", ["0", "-1Mi", "abc", "1Gi ", True])
def test_k8s_rejects_zero_negative_and_garbage(text: str | bool) -> None:
    with pytest.raises(SizeError):
        parse_k8s_quantity(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500Mi", 500 * MiB), ("1Gi", 2**30), ("1.5Gi", 1536 * MiB), ("4096", 4096), (7, 7)],
)
def test_binary_sizes(text: str | int, expected: int) -> None:
    assert parse_binary_size(text) == expected


@pytest.mark.parametrize("text", ["500m", "500M", "500MB", "1g", "0", "0Mi", "1.5Ki0", "0.3"])
def test_binary_sizes_reject_ambiguity(text: str) -> None:
    with pytest.raises(SizeError):
        parse_binary_size(text)


def test_format_binary_round_trips() -> None:
    for value in (500 * MiB, 2**30, 1536 * MiB, 4097, 50 * 1024):
        assert parse_binary_size(format_binary(value)) == value
    assert format_binary(500 * MiB) == "500Mi"


def test_human() -> None:
    assert human(1000 * MiB) == "1000 MiB"
    assert human(2**30) == "1 GiB"
    assert human(None) == "unlimited"
    assert human(UNLIMITED) == "unlimited"
