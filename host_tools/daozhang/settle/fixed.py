"""Read a fixed-width file described by a `fixed` profile (settle/profiles.py), as a stream.

UnionPay's files (the merchant's ZM, the acquirer's ACOM) are records of fixed-width fields
counted in **bytes** of GBK (a Chinese character is 2), each followed by a one-byte separator,
with no header or trailer: the file's date, and the year of its `MMDDhhmmss` times, come from
its name (`INN250107 01ZM_...`). The profile's `layout` lists the fields in order with their
widths, so a user can describe another fixed-width file in TOML alone; the cells are turned
into rows by the same code as a CSV's (settle/table.py `to_row`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from datetime import date, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from daozhang.errors import InputError
from daozhang.settle.parsed import ParsedFile, in_blocks, no_blocks
from daozhang.settle.profiles import Profile
from daozhang.settle.source import Source
from daozhang.settle.table import to_row


def file_date(name: str, profile: Profile) -> date | None:
    """The date the file's name carries (`INN250107...` -> 2025-01-07), if the profile says
    where; a name that matches with an impossible date is refused."""
    if not profile.name_date:
        return None
    m = re.search(profile.name_date, Path(name).name)
    if m is None:
        return None
    try:
        return datetime.strptime(m[1], profile.name_date_format).date()
    except ValueError:
        raise InputError(
            f"{name}: the date in the name, {m[1]!r}, is not a date ({profile.name_date_format})"
        ) from None


def parse_fixed(source: Source, profile: Profile) -> ParsedFile:
    day = file_date(source.name, profile)
    if day is None and (profile.settle_date == "file" or _yearless(profile)):
        raise InputError(
            f"{source.name}: line 1: the file's date comes from its name, which does not carry "
            f"one like {profile.name_date} ({profile.name}): keep the name the acquirer gave it"
        )
    if source.size and not source.ends_with_newline:
        # Short records are padded back (trimmed trailing spaces), so a cut last record
        # would pass: a complete file ends its last line.
        raise InputError(
            f"{source.name}: truncated: the last line has no line end (the file was cut short?)"
        )
    parsed = ParsedFile(source.name, profile.kind, profile.name, source.encoding, no_blocks())
    parsed.file_date = day.isoformat() if day else None
    stream = source.path.open("rb")
    parsed.blocks = in_blocks(profile.kind, _rows(source, profile, day, stream))
    parsed.counted = False
    return parsed


def _yearless(profile: Profile) -> bool:
    return any(s.time and "%Y" not in s.time and "%y" not in s.time for s in profile.fields)


def _offsets(profile: Profile) -> list[tuple[str, int, int]]:
    """(name, start, end) of each field in the record's bytes."""
    sep = len(profile.separator.encode())
    out, pos = [], 0
    for field_name, width in profile.layout:
        out.append((field_name, pos, pos + width))
        pos += width + sep
    return out


class _Cutter:
    """A record's cells by field name. A record with every separator in place is cut at C
    speed (an ASCII one decoded once); one with a separator out of place or a field that is
    not text goes field by field, which names the field. Both give the same cells."""

    def __init__(self, name: str, enc: str, profile: Profile) -> None:
        self.name, self.enc, self.profile = name, enc, profile
        self.offsets = _offsets(profile)
        self.sep = profile.separator.encode()
        dropped = set(profile.drop)
        kept = [(f, start, end) for f, start, end in self.offsets if f not in dropped]
        self.names = [f for f, _, _ in kept]
        self.cut = _getter([slice(start, end) for _, start, end in kept])
        width = len(self.sep)
        marks = [slice(start - width, start) for _, start, _ in self.offsets[1:]] if width else []
        self.marks = _getter(marks) if marks else None
        self.expected = (self.sep,) * len(marks)

    def cells(self, line: int, raw: bytes) -> dict[str, str]:
        if self.marks is not None and self.marks(raw) != self.expected:
            return self.field_by_field(line, raw)
        texts: Any
        if raw.isascii():
            texts = self.cut(raw.decode("ascii"))  # its bytes are its characters
        else:
            try:
                texts = [part.decode(self.enc) for part in self.cut(raw)]
            except UnicodeDecodeError:
                return self.field_by_field(line, raw)  # names the field
        return dict(zip(self.names, map(str.strip, texts), strict=True))

    def field_by_field(self, line: int, raw: bytes) -> dict[str, str]:
        name, enc, profile, sep = self.name, self.enc, self.profile, self.sep
        dropped = set(profile.drop)
        cells: dict[str, str] = {}
        for i, (field_name, start, end) in enumerate(self.offsets):
            if sep and i and raw[start - len(sep) : start] != sep:
                before = self.offsets[i - 1][0]
                raise InputError(
                    f"{name}: line {line}: field {before}: no separator after it at byte "
                    f"{start} (it, or a field before it, is not {profile.name}'s width)"
                )
            if field_name in dropped:
                continue
            try:
                cells[field_name] = raw[start:end].decode(enc).strip()
            except UnicodeDecodeError:
                raise InputError(
                    f"{name}: line {line}: field {field_name}: not {enc} text "
                    "(a character cut by a field of the wrong width?)"
                ) from None
        return cells


def _getter(items: list[slice]) -> Callable[[Any], tuple[Any, ...]]:
    """`itemgetter` that always gives a tuple (it gives the bare item for one)."""
    if len(items) == 1:
        only = items[0]
        return lambda x: (x[only],)
    return itemgetter(*items)


def _rows(
    source: Source, profile: Profile, day: date | None, stream: BinaryIO
) -> Generator[dict[str, Any], None, None]:
    name = source.name
    size = profile.record_bytes
    cutter = _Cutter(name, source.encoding, profile)
    with stream:
        for line, raw_line in enumerate(stream, start=1):
            raw = raw_line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            if len(raw) > size:
                raise InputError(
                    f"{name}: line {line}: record is {len(raw)} bytes, the layout "
                    f"({profile.name}) has {size}"
                )
            # Trailing padding may have been trimmed (an editor, a transfer): pad it back.
            raw = raw.ljust(size, b" ")
            yield to_row(name, line, profile, cutter.cells(line, raw), {}, day)
