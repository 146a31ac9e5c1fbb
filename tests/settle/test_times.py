"""A profile's times read by position (settle/times.py) are exactly what strptime reads, and
anything else goes to strptime, so a bad time is refused with the same message."""

from __future__ import annotations

from datetime import date

from daozhang.settle.times import beijing_seconds, strptime_time
from hypothesis import given
from hypothesis import strategies as st

FORMATS = ["%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y%m%d %H%M%S", "%Y%m%d%H%M%S", "%y%m%d"]


def _either(read: object, fmt: str, raw: str, day: date | None) -> object:
    try:
        return read(fmt, raw, day)  # type: ignore[operator]
    except ValueError as exc:
        return str(exc)


def _texts() -> st.SearchStrategy[str]:
    two = st.integers(0, 99).map(lambda n: f"{n:02d}")
    parts = st.lists(
        st.one_of(two, st.sampled_from(["2025", "0999", "2024", "1", "-", " ", ":", "٣"]))
    )
    return parts.map("".join)


@given(
    st.sampled_from(FORMATS),
    st.one_of(_texts(), st.text(max_size=20)),
    st.one_of(st.none(), st.dates(date(2000, 1, 1), date(2030, 12, 31))),
)
def test_times_read_by_position_are_strptimes(fmt: str, raw: str, day: date | None) -> None:
    assert _either(beijing_seconds, fmt, raw, day) == _either(strptime_time, fmt, raw, day)


def test_the_usual_times_and_the_year_rollover() -> None:
    jan = date(2025, 1, 2)
    for fmt, raw, day in [
        ("%m%d%H%M%S", "0107091502", date(2025, 1, 7)),
        ("%m%d%H%M%S", "1231235800", jan),  # last year's December
        ("%m%d%H%M%S", "0229120000", date(2024, 3, 1)),
        ("%m%d%H%M%S", "0229120000", date(2025, 3, 1)),  # no such day: strptime's error
        ("%Y-%m-%d %H:%M:%S", "2025-01-07 09:15:02", None),
        ("%Y-%m-%d %H:%M:%S", "2025-01-07 9:15:02", None),
        ("%Y%m%d %H%M%S", "20250107 240000", None),
    ]:
        assert _either(beijing_seconds, fmt, raw, day) == _either(strptime_time, fmt, raw, day)
