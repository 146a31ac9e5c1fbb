"""The generic detail CSV's rows converted a block at a time, column by column, at C speed.

Converting field by field (settle/rows.py: a converter, an ASCII check and an error path per
cell) cost ~200 µs a row: a 1 GB file took over an hour. Here a block of rows is cut into
columns and each column is checked with one regular expression over its values joined by a
newline (no pattern can match a newline, so one value cannot pose as two), like the
collector's batch check. Only what the strict patterns accept is converted here, into exactly
the values the field-by-field path gives; a block with anything else (a bad value, a space, a
leap second, a full-width digit) returns None and the caller converts it field by field, which
names the first bad file, line and field as before.

A block of plain lines (no quote, every line its header's number of commas) is cut into cells
by `str.split` (`convert_lines`), which is what the CSV reader would make of them: the reader
and a Python loop over its rows were a third of a large import's own time (issue 25).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
# column -> what each of its values must match (a subset of what rows.DETAIL's converter
# accepts; the rest goes the slow way). No value may hold a comma or a newline.
_VALUES: dict[str, str] = {
    "settle_date": _DATE,
    "merchant_id": "[0-9A-Za-z]{15}",
    "terminal_id": "[0-9A-Za-z]{8}",
    "txn_time": f"{_DATE} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]",
    "txn_type": _choices(TXN_TYPES),
    "channel": "card|qr",
    "batch_no": "[0-9]{6}",
    "trace_no": "[0-9]{6}",
    "rrn": "[0-9A-Za-z]{12}",
    "orig_rrn": "[0-9A-Za-z]{12}|",
    "card_masked": "[0-9]{6}\\*{3,9}[0-9]{4}|",
    "card_kind": "D|C|U|",
    "amount": _YUAN,
    "fee": f"-?{_YUAN}",
    "settle_amount": f"-?{_YUAN}",
    "fund_direction": _choices(R.DIRECTIONS),
    "settle_type": _choices(R.SETTLE_TYPES),
    "check_flag": _choices(R.CHECK_FLAGS),
    "payout_id": "[0-9A-Za-z_-]{1,32}|",
}
# The same, for a column's values joined by newlines (one match a column).
_PATTERNS = {name: _joined(item) for name, item in _VALUES.items()}
_ROWS: dict[tuple[str, ...], re.Pattern[str]] = {}  # a header -> its lines' pattern
_ANY = '[^,\n"]*'  # a column not stored: anything the CSV reader would split the same way


def _rows_pattern(header: list[str]) -> re.Pattern[str]:
    """Lines of `header`'s columns, each ending in a newline: a column this converter knows
    takes its values' pattern, any other (not stored) anything but a comma or a quote."""
    key = tuple(header)
    found = _ROWS.get(key)
    if found is None:
        if len(_ROWS) > 100:
            _ROWS.clear()
        cells = ",".join(f"(?:{_VALUES.get(name, _ANY)})" for name in header)
        found = _ROWS[key] = re.compile(f"(?:{cells}\n)*", re.ASCII)
    return found


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


class _NoSuchDay(ValueError):
    pass


class _Times(dict[str, int]):
    """A time as the txn_time pattern matched it (`2025-01-07 09:15:02`) -> its unix seconds,
    computed once per distinct time (a day has at most 86,400): a column of times is then
    converted with one `map` at C speed. A date that does not exist raises _NoSuchDay."""

    def __missing__(self, text: str) -> int:
        midnight = _midnight(text[:10])
        if midnight is None:
            raise _NoSuchDay(text)
        hms = text[11:]
        at = self[text] = midnight + int(hms[:2]) * 3600 + int(hms[3:5]) * 60 + int(hms[6:8])
        return at


_TIMES = _Times()
_TIMES_HELD = 100_000  # about 15 MB; a file of many days starts again past it


def _fen(text: str) -> int:
    """A value `_YUAN` (with an optional minus) matched, in fen, exactly."""
    negative = text[0] == "-"
    whole, _, frac = text.lstrip("-").partition(".")
    fen = int(whole) * 100 + (int(frac) * 10 if len(frac) == 1 else int(frac or 0))
    return -fen if negative else fen


def _fen_column(values: Sequence[str]) -> list[int]:
    """A column of amounts in fen: at C speed when every value has two decimals (the usual
    file), else value by value."""
    joined = "\n".join(values)
    if _CENTS.fullmatch(joined):
        return list(map(int, joined.replace(".", "").split("\n")))  # "-0.50" -> -50
    return list(map(_fen, values))


def convert_block(header: list[str], block: list[tuple[int, list[str]]]) -> Block | None:
    """Detail rows of a block of (line, cells) as tuples in `COLUMNS["detail"]` order, or None
    when any value needs the slow path."""
    columns = list(zip(*(cells for _, cells in block), strict=True))
    return convert_columns(header, [line for line, _ in block], columns)


def splits(header: list[str]) -> bool:
    """Whether `convert_lines` may cut this header's rows: its first column is one this
    converter checks, whose pattern takes neither `#rows` nor a leading space, so a row it
    takes (settle_date never blank either) is never one the reader's loop would skip as
    blank or read as the trailer."""
    return bool(header) and header[0] in _PATTERNS


def convert_lines(header: list[str], first: int, lines: list[str]) -> Block | None:
    """Detail rows of a block of the file's lines (line numbers from `first`), or None when
    a line holds a quote, a stray carriage return, a number of cells other than the header's
    (the CSV reader decides those) or a value that needs the slow path. `header` passes
    `splits`."""
    body = "".join(lines)
    if '"' in body:
        return None
    if "\r" in body:
        body = body.replace("\r\n", "\n")
        if "\r" in body:
            return None
    n, width = len(lines), len(header)
    # Each line its header's number of cells, each value its column's pattern (no comma,
    # no newline), so the cells are where str.split finds them.
    if body.count("\n") != n or not _rows_pattern(header).fullmatch(body):
        return None
    cells = body.replace("\n", ",").split(",")
    cells.pop()  # after the last line's end
    columns = [cells[i::width] for i in range(width)]
    return convert_columns(header, range(first, first + n), columns, matched=True)


def convert_columns(
    header: list[str],
    lines: Sequence[int],
    columns: Sequence[Sequence[str]],
    matched: bool = False,
) -> Block | None:
    """Detail rows from the file's columns (in `header` order, one value per line), or None
    when any value needs the slow path. `matched`: every value is known to match its
    column's pattern (`convert_lines` matched the lines)."""
    if len(_MIDNIGHT) > 10_000:
        _MIDNIGHT.clear()
        _DATES.clear()
    at = {name: i for i, name in enumerate(header)}
    picked: list[Any] = []
    for name in _CSV_COLUMNS:
        values = columns[at[name]]
        if not matched and not _PATTERNS[name].fullmatch("\n".join(values)):
            return None
        picked.append(values)
    if not all(map(_valid_date, set(picked[0]))):
        return None
    if len(_TIMES) > _TIMES_HELD:
        _TIMES.clear()
    try:
        picked[3] = list(map(_TIMES.__getitem__, picked[3]))
    except _NoSuchDay:
        return None
    amts, fees, nets = (_fen_column(picked[i]) for i in (12, 13, 14))
    picked[12], picked[13], picked[14] = amts, fees, nets
    flags, directions = set(picked[17]), set(picked[15])
    if flags <= {"Y", "L"} and directions <= {"in", "frozen", "unfrozen"}:
        # The usual block: money in, settled. amount - fee = net, checked at C speed.
        if not all(map(eq, nets, map(sub, amts, fees))):
            return None  # the slow path names the row
    elif not all(map(R.adds_up, picked[17], picked[15], amts, fees, nets)):
        return None
    empty = ("",) * len(lines)
    # The generic and fixed-width files carry card sales only: no `ord`, no `xid`.
    return list(zip(lines, *picked, empty, empty, strict=True))
