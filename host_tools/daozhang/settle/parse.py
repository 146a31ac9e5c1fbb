"""Settlement files into rows: the encoding (UTF-8 or GBK), the format (generic CSV with a
header naming its kind, or the UnionPay-style fixed-width clearing file), every field converted
by settle/rows.py. Nothing here touches the store; a bad row is an InputError naming the file,
the line and the field.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from daozhang.errors import InputError
from daozhang.settle import rows as R
from daozhang.settle import unionpay

ENCODINGS = ("utf-8", "gbk")
FORMATS = ("generic", "unionpay")


@dataclass
class ParsedFile:
    name: str
    kind: str  # detail | payout | merchants
    format: str
    encoding: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    acquirer: str = ""
    file_date: str | None = None  # a header's date, when the format has one

    def dates(self) -> tuple[str | None, str | None]:
        found = sorted({r["settle_date"] for r in self.rows if "settle_date" in r})
        if self.file_date:
            found = sorted({*found, self.file_date})
        return (found[0], found[-1]) if found else (None, None)


def decode(name: str, data: bytes, encoding: str | None) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM allowed) first, then GBK, unless one is forced."""
    candidates = (encoding,) if encoding else ENCODINGS
    first_error: UnicodeDecodeError | None = None
    for enc in candidates:
        try:
            text = data.decode("utf-8-sig" if enc == "utf-8" else enc)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
            continue
        if "\x00" in text:
            # UTF-16 and binary files decode "fine" byte by byte; NULs give them away.
            raise InputError(f"{name}: contains NUL bytes: not a UTF-8 or GBK text file")
        return text, enc
    assert first_error is not None  # the loop ran at least once
    line = data[: first_error.start].count(b"\n") + 1
    tried = " or ".join(candidates)
    raise InputError(
        f"{name}: line {line}: wrong encoding: not {tried} text "
        f"(byte 0x{data[first_error.start]:02x} at offset {first_error.start})"
    )


def parse(name: str, data: bytes, fmt: str | None, encoding: str | None) -> ParsedFile:
    text, enc = decode(name, data, encoding)
    if fmt is None:
        fmt = "unionpay" if text.startswith("H ") else "generic"
    if fmt == "generic":
        return _parse_generic(name, text, enc)
    if fmt == "unionpay":
        return _parse_unionpay(name, data, enc)
    raise InputError(f"{name}: unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


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


def _convert(
    name: str, line: int, spec: dict[str, tuple[str, R.Converter]], values: dict[str, str]
) -> dict[str, Any]:
    row: dict[str, Any] = {"line": line}
    for column, (key, converter) in spec.items():
        raw = (values.get(column) or "").strip()
        try:
            row[key] = converter(raw)
        except ValueError as exc:
            raise InputError(
                f"{name}: line {line}: field {column}: bad value {raw!r}: {exc}"
            ) from None
    return row


def _parse_generic(name: str, text: str, enc: str) -> ParsedFile:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{name}: empty file (no header row)") from None
    except csv.Error as exc:
        raise InputError(f"{name}: line 1: {exc}") from None
    kind = _kind_of(name, header)
    parsed = ParsedFile(name, kind, "generic", enc)
    spec = R.KINDS[kind]
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise InputError(
                    f"{name}: line {line}: {len(values)} fields, the header has {len(header)}"
                )
            parsed.rows.append(_convert(name, line, spec, dict(zip(header, values, strict=True))))
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num}: {exc}") from None
    return parsed


def _parse_unionpay(name: str, data: bytes, enc: str) -> ParsedFile:
    lines = [ln.rstrip(b"\r") for ln in data.split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    parsed = ParsedFile(name, "detail", "unionpay", enc)
    if not lines or not lines[0].startswith(b"H"):
        raise InputError(f"{name}: line 1: field rec: expected a header record (H)")
    try:
        header = unionpay.split(lines[0], unionpay.HEADER, enc)
        parsed.file_date, parsed.acquirer = unionpay.header_fields(header)
    except unionpay.LayoutError as exc:
        raise InputError(f"{name}: line 1: field {exc.field}: {exc}") from None
    trailer: dict[str, str] | None = None
    total = 0
    for number, raw in enumerate(lines[1:], start=2):
        if trailer is not None:
            raise InputError(f"{name}: line {number}: record after the trailer (T)")
        try:
            if raw.startswith(b"T"):
                trailer = unionpay.split(raw, unionpay.TRAILER, enc)
                continue
            if not raw.startswith(b"D"):
                raise unionpay.LayoutError("rec", "expected a detail (D) or trailer (T) record")
            fields = unionpay.to_generic(unionpay.split(raw, unionpay.DETAIL, enc))
        except unionpay.LayoutError as exc:
            raise InputError(f"{name}: line {number}: field {exc.field}: {exc}") from None
        row = _convert(name, number, R.DETAIL, fields)
        total += row["amt"]
        parsed.rows.append(row)
    if trailer is None:
        raise InputError(f"{name}: line {len(lines) + 1}: missing trailer (T): file truncated?")
    count = trailer["count"]
    if not count.isdigit() or int(count) != len(parsed.rows):
        raise InputError(
            f"{name}: line {len(lines)}: field count: trailer says {count!r}, "
            f"the file has {len(parsed.rows)} detail records"
        )
    if not trailer["total_amount"].isdigit() or int(trailer["total_amount"]) != total:
        raise InputError(
            f"{name}: line {len(lines)}: field total_amount: trailer says "
            f"{trailer['total_amount']!r}, the detail records add up to {total}"
        )
    return parsed
