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
from daozhang.settle import rows as R
from daozhang.settle.parsed import BLOCK_ROWS, Block, ParsedFile, as_block, column, no_blocks
from daozhang.settle.profile_block import convert_fixed_block
from daozhang.settle.profiles import Profile, Record
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
    name = source.name
    stream = source.path.open("rb")
    try:
        acquirer, header_date = _header(source, profile, stream)
    except InputError:
        stream.close()
        raise
    day = header_date or file_date(name, profile)
    if day is None and (profile.settle_date == "file" or _yearless(profile)):
        stream.close()
        raise InputError(
            f"{name}: line 1: the file's date comes from its name, which does not carry "
            f"one like {profile.name_date} ({profile.name}): keep the name the acquirer gave it"
        )
    if source.size and not source.ends_with_newline and profile.trailer is None:
        # Short records are padded back (trimmed trailing spaces), so a cut last record
        # would pass: a complete file ends its last line (a trailer's count says it instead).
        stream.close()
        raise InputError(
            f"{name}: truncated: the last line has no line end (the file was cut short?)"
        )
    parsed = ParsedFile(name, profile.kind, profile.name, source.encoding, no_blocks())
    parsed.file_date = day.isoformat() if day else None
    parsed.acquirer = acquirer
    parsed.blocks = _blocks(source, profile, day, stream, parsed)
    parsed.counted = False  # until a trailer's count is checked against the rows
    return parsed


def _header(source: Source, profile: Profile, stream: BinaryIO) -> tuple[str, date | None]:
    """(acquirer, file date) of the header record, when the layout has one."""
    spec = profile.header
    if spec is None:
        return "", None
    name = source.name
    first = stream.readline().rstrip(b"\r\n")
    kind = spec.layout[0][0]
    if not first.startswith(spec.record.encode()):
        raise InputError(
            f"{name}: line 1: field {kind}: expected a header record ({spec.record}) "
            f"({profile.name})"
        )
    cells = _record_cells(name, source.encoding, profile, spec, 1, first, "header")
    for field_name, value in cells.items():
        try:
            R.ascii_digits_only(value)
        except ValueError as exc:
            raise InputError(f"{name}: line 1: field {field_name}: {exc}") from None
    day = None
    if spec.date:
        try:
            day = datetime.strptime(cells[spec.date], spec.date_format).date()
        except ValueError:
            raise InputError(
                f"{name}: line 1: field {spec.date}: bad value {cells[spec.date]!r}: expected "
                f"a date {spec.date_format}"
            ) from None
    return (cells[spec.acquirer] if spec.acquirer else ""), day


def _record_cells(
    name: str, enc: str, profile: Profile, spec: Record, line: int, raw: bytes, what: str
) -> dict[str, str]:
    width = _width(spec.layout, profile.separator)
    if len(raw) > width or (profile.exact and len(raw) != width):
        raise InputError(
            f"{name}: line {line}: field record: the {what} record is {len(raw)} bytes, "
            f"the layout ({profile.name}) has {width}"
        )
    cutter = _Cutter(name, enc, profile, spec.layout)
    return cutter.field_by_field(line, raw.ljust(width, b" "))


def _width(layout: tuple[tuple[str, int], ...], separator: str) -> int:
    return sum(w for _, w in layout) + len(separator.encode()) * max(len(layout) - 1, 0)


def _yearless(profile: Profile) -> bool:
    return any(s.time and "%Y" not in s.time and "%y" not in s.time for s in profile.fields)


def _offsets(profile: Profile, layout: tuple[tuple[str, int], ...]) -> list[tuple[str, int, int]]:
    """(name, start, end) of each field in the record's bytes."""
    sep = len(profile.separator.encode())
    out, pos = [], 0
    for field_name, width in layout:
        out.append((field_name, pos, pos + width))
        pos += width + sep
    return out


class _Cutter:
    """A record's cells by field name. A record with every separator in place is cut at C
    speed (an ASCII one decoded once); one with a separator out of place or a field that is
    not text goes field by field, which names the field. Both give the same cells."""

    def __init__(
        self, name: str, enc: str, profile: Profile, layout: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.name, self.enc, self.profile = name, enc, profile
        self.offsets = _offsets(profile, layout or profile.layout)
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
        texts = self.texts(raw)
        if texts is None:
            return self.field_by_field(line, raw)
        return dict(zip(self.names, texts, strict=True))

    def texts(self, raw: bytes) -> list[str] | None:
        """The kept fields' stripped cells in `names` order, or None when the record needs
        `field_by_field` (a separator out of place, a field that is not text)."""
        if self.marks is not None and self.marks(raw) != self.expected:
            return None
        texts: Any
        if raw.isascii():
            texts = self.cut(raw.decode("ascii"))  # its bytes are its characters
        else:
            # Text in a field not read (a merchant's name): the kept fields' bytes decoded in
            # one call when they are ASCII (no record holds a line end), else one by one.
            parts = self.cut(raw)
            kept = b"\n".join(parts)
            if kept.isascii():
                texts = kept.decode("ascii").split("\n")
            else:
                try:
                    texts = [part.decode(self.enc) for part in parts]
                except UnicodeDecodeError:
                    return None
        return list(map(str.strip, texts))

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


def _blocks(
    source: Source, profile: Profile, day: date | None, stream: BinaryIO, parsed: ParsedFile
) -> Generator[Block, None, None]:
    """Detail records a block at a time (settle/profile_block.py), record by record only for
    a block with something unusual; a header and trailer as the profile describes them (the
    trailer checked before the last block is handed on, so the import still rolls back)."""
    name, enc = source.name, source.encoding
    size = profile.record_bytes
    cutter = _Cutter(name, enc, profile)
    detail = profile.record.encode()
    trailer_spec = profile.trailer
    trailer: tuple[int, dict[str, str], str] | None = None
    amt = column("detail", "amt")
    count = total = 0
    first = 2 if profile.header else 1  # the header was read already
    line = first - 1
    block: list[tuple[int, bytes]] = []

    def flush() -> list[Block]:
        # Records read so far, converted: any error in them comes before one found later.
        nonlocal count, total
        done = _convert(name, profile, cutter, block, day)
        block.clear()
        count += len(done)
        if trailer_spec is not None and trailer_spec.total:
            total += sum(row[amt] for row in done)
        return [done] if done else []

    with stream:
        for line, raw_line in enumerate(stream, start=first):
            raw = raw_line.rstrip(b"\r\n")
            if not raw.strip():
                continue  # blank lines (the last line end, a stray CRLF) carry nothing
            if trailer is not None:
                yield from flush()
                raise InputError(f"{name}: line {line}: record after the trailer ({trailer[2]})")
            if not raw.startswith(detail):
                yield from flush()
                if trailer_spec is not None and raw.startswith(trailer_spec.record.encode()):
                    cells = _record_cells(name, enc, profile, trailer_spec, line, raw, "trailer")
                    trailer = (line, cells, trailer_spec.record)
                    continue
                rec = profile.layout[0][0]
                also = f" or trailer ({trailer_spec.record})" if trailer_spec else ""
                raise InputError(
                    f"{name}: line {line}: field {rec}: expected a detail ({profile.record})"
                    f"{also} record"
                )
            if len(raw) > size or (profile.exact and len(raw) != size):
                yield from flush()
                raise InputError(
                    f"{name}: line {line}: field record: record is {len(raw)} bytes, the "
                    f"layout ({profile.name}) has {size}"
                )
            # Trailing padding may have been trimmed (an editor, a transfer): pad it back.
            block.append((line, raw.ljust(size, b" ")))
            if len(block) >= BLOCK_ROWS:
                yield from flush()
        yield from flush()
    if trailer_spec is not None:
        _check_trailer(name, trailer_spec, trailer, line, count, total)
        parsed.counted = True


def _check_trailer(
    name: str,
    spec: Record,
    trailer: tuple[int, dict[str, str], str] | None,
    last_line: int,
    count: int,
    total: int,
) -> None:
    if trailer is None:
        raise InputError(
            f"{name}: line {last_line + 1}: missing trailer ({spec.record}): file truncated?"
        )
    at, cells, _ = trailer
    said = [(spec.count, count, "detail records"), (spec.total, total, "fen in their amounts")]
    for field_name, found, what in said:
        if not field_name:
            continue
        text = cells[field_name]
        if not (text.isascii() and text.isdigit()) or int(text) != found:
            raise InputError(
                f"{name}: line {at}: field {field_name}: the trailer says {text!r}, the file "
                f"has {found} {what}"
            )


def _convert(
    name: str, profile: Profile, cutter: _Cutter, block: list[tuple[int, bytes]], day: date | None
) -> Block:
    """A block of records converted together; any with something unusual, record by record
    (settle/table.py `to_row`), which names the first bad line and field."""
    if not block:
        return []
    texts = [cutter.texts(raw) for _, raw in block]
    if None not in texts:
        lines = [line for line, _ in block]
        fast = convert_fixed_block(profile, cutter.names, lines, texts, day)  # type: ignore[arg-type]
        if fast is not None:
            return fast
    return as_block(
        profile.kind,
        [to_row(name, line, profile, cutter.cells(line, raw), {}, day) for line, raw in block],
    )
