"""Settlement files into rows, as a stream: the format (generic CSV with a header naming its
kind, or the UnionPay-style fixed-width clearing file), every field converted and every row
checked by settle/rows.py. Nothing here touches the store; a bad row is an InputError naming
the file, the line and the field.

Rows are yielded one at a time (a file may be hundreds of megabytes); the checks a format
allows only at the end (a trailer's count and total) run when the last row has been read,
before the generator finishes, so the importer's transaction still rolls back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, BinaryIO

from daozhang.errors import InputError
from daozhang.settle import rows as R
from daozhang.settle import unionpay
from daozhang.settle.fastrows import convert_block
from daozhang.settle.source import ENCODINGS, Source

FORMATS = ("generic", "unionpay")
__all__ = ["ENCODINGS", "FORMATS", "ParsedFile", "parse"]

# The generic CSV's trailer: `#rows,N` as its last line says the file has N rows (docs).
TRAILER = "#rows"


@dataclass
class ParsedFile:
    name: str
    kind: str  # detail | payout | merchants
    format: str
    encoding: str
    rows: Generator[dict[str, Any], None, None]  # read once; closes the file when done or closed
    acquirer: str = ""
    file_date: str | None = None  # a header's date, when the format has one
    # Once the rows are read: whether a count in the file (a trailer) was checked against them.
    counted: bool | None = None


def parse(source: Source, fmt: str | None, require_trailer: bool = False) -> ParsedFile:
    if fmt is None:
        fmt = "unionpay" if source.head.startswith(b"H ") else "generic"
    if fmt == "generic":
        return _parse_generic(source, require_trailer)
    if fmt == "unionpay":
        return _parse_unionpay(source)
    raise InputError(f"{source.name}: unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def _kind_of(name: str, header: list[str]) -> str:
    columns = set(header)
    for kind, spec in R.KINDS.items():
        if set(spec) <= columns:
            return kind
    best = min(R.KINDS, key=lambda k: len(set(R.KINDS[k]) - columns))
    missing = [c for c in R.KINDS[best] if c not in columns]
    raise InputError(
        f"{name}: line 1: header is not a detail, payout or merchants file "
        f"(closest: {best}; missing columns: {', '.join(missing)})"
    )


def convert(
    name: str,
    line: int,
    kind: str,
    values: dict[str, str],
) -> dict[str, Any]:
    """One row's fields (the generic CSV's column names) into a checked row of `kind`."""
    row: dict[str, Any] = {"line": line}
    for column, (key, converter) in (*R.KINDS[kind].items(), *R.OPTIONAL.get(kind, {}).items()):
        raw = (values.get(column) or "").strip()
        try:
            if column not in R.FREE_TEXT:
                R.ascii_digits_only(raw)
            row[key] = converter(raw)
        except ValueError as exc:
            raise InputError(
                f"{name}: line {line}: field {column}: bad value {raw!r}: {exc}"
            ) from None
    if kind == "detail":
        row["ord"] = row["xid"] = ""  # the generic and fixed-width files carry card sales only
        problem = R.check_detail(row)
        if problem:
            raise InputError(f"{name}: line {line}: field {problem[0]}: {problem[1]}")
    return row


def _parse_generic(source: Source, require_trailer: bool) -> ParsedFile:
    name = source.name
    if source.size == 0:
        raise InputError(f"{name}: empty file (no header row)")
    if not source.ends_with_newline:
        # A transfer cut mid-line leaves a last row that may still parse (an amount cut
        # from 100.50 to 100.5): a complete file ends its last line.
        raise InputError(
            f"{name}: truncated: the last line has no line end (the file was cut short?)"
        )
    stream = source.path.open("rb")
    text = io.TextIOWrapper(stream, encoding=source.text_encoding(), newline="")
    reader = csv.reader(text)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        text.close()
        raise InputError(f"{name}: empty file (no header row)") from None
    except csv.Error as exc:
        text.close()
        raise InputError(f"{name}: line 1: {exc}") from None
    try:
        kind = _kind_of(name, header)
    except InputError:
        text.close()
        raise
    parsed = ParsedFile(name, kind, "generic", source.encoding, _no_rows())
    parsed.rows = _generic_rows(parsed, header, reader, text, require_trailer)
    return parsed


def _no_rows() -> Generator[dict[str, Any], None, None]:
    yield from ()


_BLOCK = 1000  # rows converted together (settle/fastrows.py)
_TRAILER_STARTS = frozenset("# \t")


def _generic_rows(
    parsed: ParsedFile,
    header: list[str],
    reader: Any,
    text: io.TextIOWrapper,
    require_trailer: bool,
) -> Generator[dict[str, Any], None, None]:
    name, kind = parsed.name, parsed.kind
    count = 0
    trailer: tuple[int, int] | None = None  # (line, rows it declares)
    block: list[tuple[int, list[str]]] = []

    def flush() -> list[dict[str, Any]]:
        # Rows read so far, converted: any error in them comes before one found later.
        done = _convert_block(name, kind, header, block)
        block.clear()
        return done

    with text:
        try:
            for values in reader:
                line = reader.line_num
                first = values[0] if values else ""
                # A row whose first cell has text is no blank line: the all() only runs for the
                # rare row that starts empty.
                if not first.strip() and all(not v.strip() for v in values):
                    continue
                if trailer is not None:
                    yield from flush()
                    raise InputError(f"{name}: line {line}: a row after the trailer ({TRAILER})")
                if first[:1] in _TRAILER_STARTS and first.strip() == TRAILER:
                    trailer = (line, _trailer_count(name, line, values))
                    continue
                if len(values) != len(header):
                    yield from flush()
                    raise InputError(
                        f"{name}: line {line}: {len(values)} fields, the header has {len(header)}"
                    )
                count += 1
                block.append((line, values))
                if len(block) >= _BLOCK:
                    yield from flush()
        except csv.Error as exc:
            yield from flush()
            raise InputError(f"{name}: line {reader.line_num}: {exc}") from None
        yield from flush()
    if trailer is None:
        if require_trailer:
            raise InputError(
                f"{name}: line {reader.line_num + 1}: no trailer: a generic CSV ends with "
                f"`{TRAILER},N` (its N rows); without it a file cut at a line boundary looks "
                "complete (--allow-no-trailer accepts it unchecked)"
            )
        parsed.counted = False
        return
    if trailer[1] != count:
        raise InputError(
            f"{name}: line {trailer[0]}: field rows: the trailer says {trailer[1]} rows, "
            f"the file has {count}: file truncated or edited"
        )
    parsed.counted = True


def _convert_block(
    name: str, kind: str, header: list[str], block: list[tuple[int, list[str]]]
) -> list[dict[str, Any]]:
    if not block:
        return []
    if kind == "detail":
        fast = convert_block(header, block)
        if fast is not None:
            return fast
    return [
        convert(name, line, kind, dict(zip(header, values, strict=True))) for line, values in block
    ]


def _trailer_count(name: str, line: int, values: list[str]) -> int:
    count = values[1].strip() if len(values) == 2 else ""
    if not (count.isascii() and count.isdigit()):
        raise InputError(
            f"{name}: line {line}: field rows: bad trailer {','.join(values)!r}: "
            f"expected {TRAILER},N (the number of rows)"
        )
    return int(count)


def _parse_unionpay(source: Source) -> ParsedFile:
    name, enc = source.name, source.encoding
    stream = source.path.open("rb")
    first = stream.readline().rstrip(b"\r\n")
    if not first.startswith(b"H"):
        stream.close()
        raise InputError(f"{name}: line 1: field rec: expected a header record (H)")
    try:
        header = unionpay.split(first, unionpay.HEADER, enc)
        _ascii_fields(header, ())
        file_date, acquirer = unionpay.header_fields(header)
    except unionpay.LayoutError as exc:
        stream.close()
        raise InputError(f"{name}: line 1: field {exc.field}: {exc}") from None
    return ParsedFile(
        name,
        "detail",
        "unionpay",
        enc,
        _unionpay_rows(name, enc, stream),
        acquirer,
        file_date,
        counted=True,
    )


def _ascii_fields(fields: dict[str, str], free: tuple[str, ...]) -> None:
    for key, value in fields.items():
        if key not in free:
            try:
                R.ascii_digits_only(value)
            except ValueError as exc:
                raise unionpay.LayoutError(key, f"bad value {value!r}: {exc}") from None


def _unionpay_rows(name: str, enc: str, stream: BinaryIO) -> Generator[dict[str, Any], None, None]:
    trailer: dict[str, str] | None = None
    total = count = 0
    number = 1
    with stream:
        for number, raw_line in enumerate(stream, start=2):
            raw = raw_line.rstrip(b"\r\n")
            if not raw:
                continue  # blank lines (the last line end, a stray CRLF) carry nothing
            if trailer is not None:
                raise InputError(f"{name}: line {number}: record after the trailer (T)")
            try:
                if raw.startswith(b"T"):
                    trailer = unionpay.split(raw, unionpay.TRAILER, enc)
                    trailer_line = number
                    continue
                if not raw.startswith(b"D"):
                    raise unionpay.LayoutError("rec", "expected a detail (D) or trailer (T) record")
                fields = unionpay.split(raw, unionpay.DETAIL, enc)
                _ascii_fields(fields, ("merchant_name",))
                generic = unionpay.to_generic(fields)
            except unionpay.LayoutError as exc:
                raise InputError(f"{name}: line {number}: field {exc.field}: {exc}") from None
            row = convert(name, number, "detail", generic)
            total += row["amt"]
            count += 1
            yield row
    if trailer is None:
        raise InputError(f"{name}: line {number + 1}: missing trailer (T): file truncated?")
    if not trailer["count"].isdigit() or int(trailer["count"]) != count:
        raise InputError(
            f"{name}: line {trailer_line}: field count: trailer says {trailer['count']!r}, "
            f"the file has {count} detail records"
        )
    if not trailer["total_amount"].isdigit() or int(trailer["total_amount"]) != total:
        raise InputError(
            f"{name}: line {trailer_line}: field total_amount: trailer says "
            f"{trailer['total_amount']!r}, the detail records add up to {total}"
        )
