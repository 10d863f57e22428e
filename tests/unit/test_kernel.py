"""The kernel's own words (/proc/meminfo, THP's enabled file) read into numbers and names."""

from __future__ import annotations

import pytest

from oomlab.rules.kernel import parse_meminfo, parse_thp


def test_meminfo_fields_are_bytes() -> None:
    text = "MemTotal:        4007124 kB\nSwapTotal:       2097148 kB\nHugePages_Total:       0\n"
    assert parse_meminfo(text) == {
        "MemTotal": 4007124 * 1024,
        "SwapTotal": 2097148 * 1024,
        "HugePages_Total": 0,
    }


def test_meminfo_lines_without_a_number_are_left_out() -> None:
    assert parse_meminfo("garbage\nSwapCached: kB\nSwapFree:  12 kB\n\n") == {"SwapFree": 12288}
    assert parse_meminfo("") == {}


@pytest.mark.parametrize(
    ("text", "mode"),
    [("always [madvise] never", "madvise"), ("[always] madvise never\n", "always"), ("", None),
     (None, None)],
)  # fmt: skip
def test_thp_mode(text: str | None, mode: str | None) -> None:
    assert parse_thp(text) == mode
