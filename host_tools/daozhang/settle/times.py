"""A profile's times (`time = "%m%d%H%M%S"`) read into unix seconds, Beijing time.

strptime costs ~10 µs a call and a yearless time needs two (and a round trip through
strftime to refuse "1010" read as 10:01:00): a format made only of zero-padded numeric
directives and literal characters is read by position instead, and anything else, or any text
that is not plainly those digits, goes through strptime, which names what it expected.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from daozhang.units import BEIJING


def beijing_seconds(fmt: str, raw: str, file_date: date | None) -> int:
    """Beijing time to unix seconds. A format without a year (UnionPay's MMDDhhmmss) takes
    the file's: a December sale in a January file is last year's. Read by `_digits_time` when
    the text is plainly the format's digits, else by strptime (which names what it expected)."""
    if "%Y" in fmt or "%y" in fmt:
        naive = _digits_time(fmt, raw, None)
    elif file_date is None:
        naive = None  # strptime's path says the year comes from the file name
    else:
        naive = _digits_time(fmt, raw, file_date.year)
        if naive is not None and naive.date() > file_date + timedelta(days=7):
            naive = _digits_time(fmt, raw, file_date.year - 1)
    if naive is None:
        return strptime_time(fmt, raw, file_date)
    return int(naive.replace(tzinfo=BEIJING).timestamp())


def strptime_time(fmt: str, raw: str, file_date: date | None) -> int:
    """`beijing_seconds` by strptime alone: every text, and the error for a bad one."""
    yearless = "%Y" not in fmt and "%y" not in fmt
    try:
        if yearless:
            if file_date is None:
                raise ValueError(f"expected a time {fmt}: the year comes from the file name")
            naive = datetime.strptime(f"{file_date.year} {raw}", f"%Y {fmt}")
            if naive.date() > file_date + timedelta(days=7):
                naive = datetime.strptime(f"{file_date.year - 1} {raw}", f"%Y {fmt}")
        else:
            naive = datetime.strptime(raw, fmt)
        if naive.strftime(fmt) != raw:
            # strptime takes "1010" for %H%M%S as 10:01:00: only the exact text is a time.
            raise ValueError(fmt)
    except ValueError as exc:
        if "year comes" in str(exc):
            raise
        raise ValueError(f"expected a time {fmt} (Beijing)") from None
    return int(naive.replace(tzinfo=BEIJING).timestamp())


# A format made of these zero-padded directives and literal characters is read by position.
_DIGITS = {"%Y": ("year", 4), "%m": ("month", 2), "%d": ("day", 2), "%H": ("hour", 2)}
_DIGITS |= {"%M": ("minute", 2), "%S": ("second", 2)}
_Plan = tuple[int, list[tuple[str, int, int]], list[tuple[int, str]]]
_PLANS: dict[str, _Plan | None] = {}


def _plan(fmt: str) -> _Plan | None:
    """(length, [(part, start, end)], [(position, literal)]) of a format, if it is one."""
    if fmt not in _PLANS:
        parts: list[tuple[str, int, int]] = []
        literals: list[tuple[int, str]] = []
        pos = i = 0
        while i < len(fmt):
            if fmt[i] != "%":
                literals.append((pos, fmt[i]))
                pos, i = pos + 1, i + 1
                continue
            part = _DIGITS.get(fmt[i : i + 2])
            if part is None or any(p[0] == part[0] for p in parts):
                _PLANS[fmt] = None
                return None
            parts.append((part[0], pos, pos + part[1]))
            pos, i = pos + part[1], i + 2
        _PLANS[fmt] = (pos, parts, literals)
    return _PLANS[fmt]


def _digits_time(fmt: str, raw: str, year: int | None) -> datetime | None:
    """The naive time `raw` spells in `fmt` exactly (zero-padded ASCII digits), else None:
    what this returns, strptime and its round trip through strftime give too."""
    plan = _plan(fmt)
    if plan is None or len(raw) != plan[0] or not raw.isascii():
        return None
    if any(raw[at] != ch for at, ch in plan[2]):
        return None
    values = {"year": 1900 if year is None else year, "month": 1, "day": 1}
    for part, start, end in plan[1]:
        text = raw[start:end]
        if not text.isdigit():
            return None
        values[part] = int(text)
    if values["year"] < 1000:
        return None  # strftime writes such a year unpadded: strptime's path decides
    try:
        v = values
        return datetime(
            v["year"],
            v["month"],
            v["day"],
            v.get("hour", 0),
            v.get("minute", 0),
            v.get("second", 0),
        )
    except ValueError:
        return None
