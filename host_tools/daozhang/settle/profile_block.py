"""A fixed-width profile's records converted a block at a time, column by column, at C speed.

`table.to_row` converts one record field by field (~50 µs: a converter, an ASCII check and
an error path per cell). Here each of the profile's fields is checked for a whole block with
one regular expression over its values joined by a newline (no pattern matches a newline, so
one value cannot pose as two), as the generic CSV's block converter does (settle/fastrows.py).
Only what the strict patterns accept is converted here, into exactly the values `to_row`
gives; a block with anything else (a bad value, a non-ASCII cell, a leap second, a field read
by another's type) returns None and the reader converts it record by record, which names the
first bad line and field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from operator import eq, sub
from typing import Any

from daozhang.settle import rows as R
from daozhang.settle.parsed import COLUMNS, Block
from daozhang.settle.profiles import FieldSpec, Profile
from daozhang.settle.times import beijing_seconds
from daozhang.units import BEIJING

_DIRECTION = {"sale": "in", "refund": "refund", "void": "out"}  # as table.to_row derives it
_CHOICES = {
    "ch": frozenset(("card", "qr")),
    "direction": frozenset(R.DIRECTIONS),
    "settle_type": frozenset(R.SETTLE_TYPES),
    "check_flag": frozenset(R.CHECK_FLAGS),
}
_EMPTY = ("tid", "bat", "trc", "rrn", "orrn", "pan", "ck", "payout_id", "ord", "xid")
_DETAIL = COLUMNS["detail"][1:]  # a row's values after its line


def _joined(item: str, optional: bool) -> re.Pattern[str]:
    one = f"(?:{item}){'|' if optional else ''}"
    return re.compile(f"(?:{one})(?:\n(?:{one}))*", re.ASCII)


_PATTERNS: dict[tuple[str, bool], re.Pattern[str]] = {}


def _matches(item: str, optional: bool, values: Sequence[str]) -> bool:
    key = (item, optional)
    compiled = _PATTERNS.get(key)
    if compiled is None:
        compiled = _PATTERNS[key] = _joined(item, optional)
    return compiled.fullmatch("\n".join(values)) is not None


_ID = "[\\x21-\\x7e]{1,64}"
_MID = re.compile("[0-9A-Za-z]{6,32}(?:\n[0-9A-Za-z]{6,32})*", re.ASCII)
_CARD = "[0-9]{6}\\*{3,9}[0-9]{4}|[0-9]{13,19}"
_MIDNIGHTS: dict[tuple[str, str, date | None], int] = {}  # (format, date part, file date)
_HMS: dict[str, int] = {}  # "091502" -> 33302
_DAYS: dict[int, str] = {}  # Beijing day number -> "2025-01-07"
_DATES: dict[tuple[str, str], str] = {}  # (text, format) -> "2025-01-07"


def convert_fixed_block(
    profile: Profile,
    names: Sequence[str],
    lines: Sequence[int],
    cells: Sequence[Sequence[str]],
    file_date: date | None,
) -> Block | None:
    """Detail rows of a block of records (each record's stripped cells in `names` order) as
    tuples in `COLUMNS["detail"]` order, or None when any value needs the slow path."""
    if not cells or any(s.by_type for s in profile.fields):
        return None
    if len(_MIDNIGHTS) > 10_000 or len(_DATES) > 10_000:
        _MIDNIGHTS.clear()
        _DATES.clear()
    at = {name: i for i, name in enumerate(names)}
    columns = list(zip(*cells, strict=True))
    n = len(cells)
    got: dict[str, Sequence[Any]] = {}
    for spec in profile.fields:
        if any(c not in at for c in spec.columns):
            return None
        if len(spec.columns) == 1:
            raw: Sequence[str] = columns[at[spec.columns[0]]]
        else:
            parts = [columns[at[c]] for c in spec.columns]
            raw = [" ".join(p).strip() for p in zip(*parts, strict=True)]
        values = _column(spec, raw, file_date)
        if values is None:
            return None
        got[spec.key] = values
    for key, value in profile.defaults.items():
        got.setdefault(key, (value,) * n)
    typ = got.setdefault("typ", ("sale",) * n)
    settle_date = _settle_dates(profile, got, columns, at, file_date, n)
    if settle_date is None:
        return None
    got["settle_date"] = settle_date
    if "direction" not in got:
        got["direction"] = [_DIRECTION.get(t, "in") for t in typ]
    got.setdefault("fee", (0,) * n)
    for key in _EMPTY:
        got.setdefault(key, ("",) * n)
    if not {"mid", "amt", "check_flag"} <= got.keys():
        return None  # to_row says what is missing
    mids = got["mid"]
    if not all(isinstance(m, str) for m in mids) or not _MID.fullmatch("\n".join(mids)):
        return None
    for key, allowed in _CHOICES.items():
        if key in got and not set(got[key]) <= allowed:
            return None  # to_row names the field
    amts, fees, flags, directions = got["amt"], got["fee"], got["check_flag"], got["direction"]
    if "settle_amt" not in got:
        got["settle_amt"] = [
            -a - f if d in ("out", "refund") else a - f
            for a, f, d in zip(amts, fees, directions, strict=True)
        ]
    nets = got["settle_amt"]
    if set(flags) <= {"Y", "L"} and set(directions) <= {"in", "frozen", "unfrozen"}:
        if not all(map(eq, nets, map(sub, amts, fees))):
            return None
    elif not all(map(R.adds_up, flags, directions, amts, fees, nets)):
        return None
    return list(zip(lines, *(got[key] for key in _DETAIL), strict=True))


def _column(spec: FieldSpec, raw: Sequence[str], file_date: date | None) -> list[Any] | None:
    """One field's values for the block, as `table._value` gives them, or None."""
    optional = spec.optional
    if not all(map(str.isascii, raw)):
        return None  # a non-ASCII digit, or text to decode: record by record
    if optional and not all(raw):
        present = [v for v in raw if v]
        done = _column(spec, present, file_date) if present else []
        if done is None:
            return None
        it = iter(done)
        return [next(it) if v else "" for v in raw]
    if spec.mask_card:
        if not _matches(_CARD, False, raw):
            return None
        return [v if "*" in v else v[:6] + "*" * (len(v) - 10) + v[-4:] for v in raw]
    if spec.time:
        return _times(spec.time, raw, file_date)
    if spec.yuan:
        return None  # not in fixed-width files: record by record
    if spec.fen or spec.dc or spec.signed:
        return _fen_column(spec, raw)
    if spec.mapping:
        if not set(raw) <= spec.mapping.keys():
            return None
        return [spec.mapping[v] for v in raw]
    if spec.pattern and not _matches(spec.pattern, False, raw):
        return None
    if not _matches(_ID, False, raw):
        return None
    return list(raw)


def _fen_column(spec: FieldSpec, raw: Sequence[str]) -> list[int] | None:
    if spec.dc:
        if not _matches("[CD][0-9]{1,16}", False, raw):
            return None
        fen = [int(v[1:]) if v[0] == spec.dc else -int(v[1:]) for v in raw]
    elif spec.signed:
        if not _matches("[+-][0-9]{1,16}", False, raw):
            return None
        fen = list(map(int, raw))
    else:
        if not _matches("[0-9]{1,16}", False, raw):
            return None
        fen = list(map(int, raw))
    if spec.absolute:
        fen = [abs(v) for v in fen]
    if spec.negate:
        fen = [-v for v in fen]
    return fen


def _times(fmt: str, raw: Sequence[str], file_date: date | None) -> list[int] | None:
    """Times whose format ends in %H%M%S (UnionPay's MMDDhhmmss, YYYYMMDDhhmmss): the date
    part's Beijing midnight once per date, the time of day by position."""
    if not fmt.endswith("%H%M%S") or "%" not in fmt[:-6]:
        return _each_time(fmt, raw, file_date)
    day_fmt = fmt[:-6]
    width = len(datetime(2000, 1, 1).strftime(day_fmt))
    if not _matches(f"[0-9]{{{width + 6}}}", False, raw):
        return None
    out = []
    for v in raw:
        day, hms = v[:width], v[width:]
        key = (day_fmt, day, file_date)
        midnight = _MIDNIGHTS.get(key)
        if midnight is None:
            try:
                midnight = beijing_seconds(fmt, f"{day}000000", file_date)
            except ValueError:
                return None
            _MIDNIGHTS[key] = midnight
        seconds = _HMS.get(hms)
        if seconds is None:
            h, m, s = int(hms[:2]), int(hms[2:4]), int(hms[4:])
            if h > 23 or m > 59 or s > 59:
                return None  # strptime refuses a leap second: the slow path names it
            seconds = _HMS[hms] = h * 3600 + m * 60 + s
        out.append(midnight + seconds)
    return out


def _each_time(fmt: str, raw: Sequence[str], file_date: date | None) -> list[int] | None:
    try:
        return [beijing_seconds(fmt, v, file_date) for v in raw]
    except ValueError:
        return None


def _settle_dates(
    profile: Profile,
    got: dict[str, Any],
    columns: list[tuple[str, ...]],
    at: dict[str, int],
    file_date: date | None,
    n: int,
) -> Sequence[str] | None:
    if profile.settle_date == "file":
        return None if file_date is None else (file_date.isoformat(),) * n
    if profile.settle_date == "txn_time":
        out = []
        for t in got["txn_time"]:
            number = (t + 8 * 3600) // 86_400  # Beijing is UTC+8, no daylight saving
            text = _DAYS.get(number)
            if text is None:
                text = _DAYS[number] = datetime.fromtimestamp(t, BEIJING).date().isoformat()
            out.append(text)
        return out
    if profile.settle_date == "column" and profile.settle_date_column in at:
        fmt = profile.settle_date_format
        values = columns[at[profile.settle_date_column]]
        out = []
        for v in values:
            text = _DATES.get((v, fmt))
            if text is None:
                if not v.isascii():
                    return None
                try:
                    text = datetime.strptime(v, fmt).date().isoformat()
                except ValueError:
                    return None
                _DATES[(v, fmt)] = text
            out.append(text)
        return out
    return None
