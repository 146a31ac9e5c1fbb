"""The digit-run scan of undecoded bytes: the same runs as the regex it replaced."""

from __future__ import annotations

import random
import re

from daozhang.collector.pan_check import digit_runs, holds_pan_like_run
from hypothesis import given
from hypothesis import strategies as st

REGEX = re.compile(rb"\d{13,19}")

# Bytes made of digit runs of every length around the cut points (12, 13, 19, 20, 32, 38,
# 39 ...) and separators, at the start, the end and in between.
_piece = st.one_of(
    st.integers(0, 45).map(lambda n: bytes(random.Random(n).choices(b"0123456789", k=n))),
    st.binary(min_size=1, max_size=4),
)


@given(st.lists(_piece, max_size=12))
def test_digit_runs_are_what_the_regex_finds(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert digit_runs(raw) == REGEX.findall(raw)


def test_runs_longer_than_19_digits_are_cut_as_the_regex_cuts_them() -> None:
    for length in (12, 13, 19, 20, 31, 32, 38, 39, 51, 52):
        raw = b"x" + b"7" * length + b"\x00" + b"5" * length
        assert digit_runs(raw) == REGEX.findall(raw), length


def test_a_luhn_valid_run_is_held_unless_allowed() -> None:
    pan = b"4111111111111111"
    assert holds_pan_like_run(b"\x70" + pan + b"\x61", set())
    assert not holds_pan_like_run(b"\x70" + pan + b"\x61", {pan})
    assert not holds_pan_like_run(b"\x70" + pan[:-1] + b"2\x61", set())  # Luhn fails
