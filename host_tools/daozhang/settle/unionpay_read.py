"""Read the UnionPay-style fixed-width clearing file (settle/unionpay.py's layout) as a stream.

The header (H) gives the file's date and acquirer; detail records (D) are converted a block at
a time, cut at C speed (`unionpay.generic_cells`) and checked column by column like the
generic CSV (settle/fastrows.py); a block with anything unusual goes record by record, which
names the first bad line and field. The trailer (T) is checked against the records' count and
total before the last block is handed on, so the importer's transaction still rolls back.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, BinaryIO

from daozhang.errors import InputError
from daozhang.settle import rows as R
from daozhang.settle import unionpay
from daozhang.settle.fastrows import convert_block
from daozhang.settle.parse import convert
from daozhang.settle.parsed import BLOCK_ROWS, Block, ParsedFile, as_block, column
from daozhang.settle.source import Source


def parse_unionpay(source: Source) -> ParsedFile:
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
        _unionpay_blocks(name, enc, stream),
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


def _unionpay_blocks(name: str, enc: str, stream: BinaryIO) -> Generator[Block, None, None]:
    trailer: dict[str, str] | None = None
    total = count = 0
    number = 1
    amt = column("detail", "amt")
    block: list[tuple[int, bytes]] = []

    def flush() -> list[Block]:
        # Records read so far, converted: any error in them comes before one found later.
        nonlocal total, count
        done = _unionpay_block(name, enc, block)
        block.clear()
        count += len(done)
        total += sum(row[amt] for row in done)
        return [done] if done else []

    with stream:
        for number, raw_line in enumerate(stream, start=2):
            raw = raw_line.rstrip(b"\r\n")
            if not raw:
                continue  # blank lines (the last line end, a stray CRLF) carry nothing
            if raw.startswith(b"D") and trailer is None:
                block.append((number, raw))
                if len(block) >= BLOCK_ROWS:
                    yield from flush()
                continue
            yield from flush()
            if trailer is not None:
                raise InputError(f"{name}: line {number}: record after the trailer (T)")
            if not raw.startswith(b"T"):
                raise InputError(
                    f"{name}: line {number}: field rec: expected a detail (D) or trailer (T) record"
                )
            try:
                trailer = unionpay.split(raw, unionpay.TRAILER, enc)
            except unionpay.LayoutError as exc:
                raise InputError(f"{name}: line {number}: field {exc.field}: {exc}") from None
            trailer_line = number
        yield from flush()
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


_DETAIL_HEADER = list(R.DETAIL)


def _unionpay_block(name: str, enc: str, block: list[tuple[int, bytes]]) -> Block:
    """D records converted together (settle/fastrows.py); any block with something unusual
    goes record by record, which names the first bad line and field."""
    if not block:
        return []
    cells = [unionpay.generic_cells(raw, enc) for _, raw in block]
    if None not in cells:
        fast = convert_block(
            _DETAIL_HEADER, [(n, c) for (n, _), c in zip(block, cells, strict=True) if c]
        )
        if fast is not None:
            return fast
    return as_block("detail", [_unionpay_row(name, enc, n, raw) for n, raw in block])


def _unionpay_row(name: str, enc: str, number: int, raw: bytes) -> dict[str, Any]:
    try:
        fields = unionpay.split(raw, unionpay.DETAIL, enc)
        _ascii_fields(fields, ("merchant_name",))
        generic = unionpay.to_generic(fields)
    except unionpay.LayoutError as exc:
        raise InputError(f"{name}: line {number}: field {exc.field}: {exc}") from None
    return convert(name, number, "detail", generic)
