"""The generic detail CSV's rows converted a block at a time, column by column, at C speed.

Converting field by field (settle/rows.py: a converter, an ASCII check and an error path per
cell) cost ~200 µs a row: a 1 GB file took over an hour. Here a block of rows is cut into
columns and each column is checked with one regular expression over its values joined by a
newline (no pattern can match a newline, so one value cannot pose as two), like the
collector's batch check. Only what the strict patterns accept is converted here, into exactly
the values the field-by-field path gives; a block with anything else (a bad value, a space, a
leap second, a full-width digit) returns None and the caller converts it field by field, which
names the first bad file, line and field as before.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from operator import eq, sub
from typing import Any

from daozhang.contract import TXN_TYPES
from daozhang.settle import rows as R
from daozhang.settle.parsed import Block
from daozhang.units import BEIJING


def _joined(item: str) -> re.Pattern[str]:
    return re.compile(f"(?:{item})(?:\n(?:{item}))*", re.ASCII)


def _choices(values: tuple[str, ...], optional: bool = False) -> str:
    return "|".join([*map(re.escape, values), *([""] if optional else [])])


_DATE = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
_YUAN = "[0-9]{1,13}(?:\\.[0-9]{1,2})?"
# column -> the pattern every value of the block must match (a subset of what rows.DETAIL's
# converter accepts; the rest goes the slow way).
_PATTERNS: dict[str, re.Pattern[str]] = {
    "settle_date": _joined(_DATE),
    "merchant_id": _joined("[0-9A-Za-z]{15}"),
    "terminal_id": _joined("[0-9A-Za-z]{8}"),
    "txn_time": _joined(f"{_DATE} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"),
    "txn_type": _joined(_choices(TXN_TYPES)),
    "channel": _joined("card|qr"),
    "batch_no": _joined("[0-9]{6}"),
    "trace_no": _joined("[0-9]{6}"),
    "rrn": _joined("[0-9A-Za-z]{12}"),
    "orig_rrn": _joined("[0-9A-Za-z]{12}|"),
    "card_masked": _joined("[0-9]{6}\\*{3,9}[0-9]{4}|"),
    "card_kind": _joined("D|C|U|"),
    "amount": _joined(_YUAN),
    "fee": _joined(f"-?{_YUAN}"),
    "settle_amount": _joined(f"-?{_YUAN}"),
    "fund_direction": _joined(_choices(R.DIRECTIONS)),
    "settle_type": _joined(_choices(R.SETTLE_TYPES)),
    "check_flag": _joined(_choices(R.CHECK_FLAGS)),
    "payout_id": _joined("[0-9A-Za-z_-]{1,32}|"),
}
_CSV_COLUMNS = tuple(R.DETAIL)  # the documented order
_MIDNIGHT: dict[str, int] = {}  # "2025-01-07" -> unix seconds of its Beijing midnight
_DATES: dict[str, str] = {}  # a settle_date text seen valid


def _midnight(day: str) -> int | None:
    at = _MIDNIGHT.get(day)
    if at is None:
        try:
            naive = datetime.strptime(day, "%Y-%m-%d")
        except ValueError:
            return None
        at = _MIDNIGHT[day] = int(naive.replace(tzinfo=BEIJING).timestamp())
    return at


def _valid_date(day: str) -> bool:
    if day in _DATES:
        return True
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    _DATES[day] = day
    return True


_CENTS = re.compile("-?[0-9]{1,13}\\.[0-9]{2}(?:\n-?[0-9]{1,13}\\.[0-9]{2})*", re.ASCII)
_HMS: dict[str, int] = {}  # "09:15:02" -> 33302


def _fen(text: str) -> int:
    """A value `_YUAN` (with an optional minus) matched, in fen, exactly."""
    negative = text[0] == "-"
    whole, _, frac = text.lstrip("-").partition(".")
    fen = int(whole) * 100 + (int(frac) * 10 if len(frac) == 1 else int(frac or 0))
    return -fen if negative else fen


def _fen_column(values: tuple[str, ...]) -> list[int]:
    """A column of amounts in fen: at C speed when every value has two decimals (the usual
    file), else value by value."""
    joined = "\n".join(values)
    if _CENTS.fullmatch(joined):
        return list(map(int, joined.replace(".", "").split("\n")))  # "-0.50" -> -50
    return list(map(_fen, values))


def _seconds(hms: str) -> int:
    s = _HMS.get(hms)
    if s is None:
        s = _HMS[hms] = int(hms[:2]) * 3600 + int(hms[3:5]) * 60 + int(hms[6:8])
    return s


def convert_block(header: list[str], block: list[tuple[int, list[str]]]) -> Block | None:
    """Detail rows of a block of (line, cells) as tuples in `COLUMNS["detail"]` order, or None
    when any value needs the slow path."""
    if len(_MIDNIGHT) > 10_000:
        _MIDNIGHT.clear()
        _DATES.clear()
    columns = list(zip(*(cells for _, cells in block), strict=True))
    at = {name: i for i, name in enumerate(header)}
    picked: list[Any] = []
    for name in _CSV_COLUMNS:
        values: tuple[str, ...] = columns[at[name]]
        if not _PATTERNS[name].fullmatch("\n".join(values)):
            return None
        picked.append(values)
    if not all(map(_valid_date, set(picked[0]))):
        return None
    midnights = {}
    for day in {t[:10] for t in picked[3]}:
        m = _midnight(day)
        if m is None:
            return None
        midnights[day] = m
    picked[3] = [midnights[t[:10]] + _seconds(t[11:]) for t in picked[3]]
    amts, fees, nets = (_fen_column(picked[i]) for i in (12, 13, 14))
    picked[12], picked[13], picked[14] = amts, fees, nets
    flags, directions = set(picked[17]), set(picked[15])
    if flags <= {"Y", "L"} and directions <= {"in", "frozen", "unfrozen"}:
        # The usual block: money in, settled. amount - fee = net, checked at C speed.
        if not all(map(eq, nets, map(sub, amts, fees))):
            return None  # the slow path names the row
    elif not all(map(R.adds_up, picked[17], picked[15], amts, fees, nets)):
        return None
    empty = ("",) * len(block)
    # The generic and fixed-width files carry card sales only: no `ord`, no `xid`.
    return list(zip([line for line, _ in block], *picked, empty, empty, strict=True))
