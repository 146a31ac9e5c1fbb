"""The generic CSV (a header naming its kind) into rows, as a stream: every field converted
and every row checked by settle/rows.py. Nothing here touches the store; a bad row is an
InputError naming the file, the line and the field.

Rows are handed on a block at a time (a file may be hundreds of megabytes; settle/parsed.py);
the checks a format allows only at the end (a trailer's count and total) run when the last row
has been read, before the generator finishes, so the importer's transaction still rolls back.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Generator
from itertools import islice
from typing import Any

from daozhang.errors import InputError
from daozhang.settle import rows as R
from daozhang.settle.fastrows import convert_block, convert_lines, splits
from daozhang.settle.parsed import BLOCK_ROWS, Block, ParsedFile, as_block, no_blocks
from daozhang.settle.source import ENCODINGS, Source

FORMATS = ("generic", "unionpay")  # the old names of two profiles (`settle import --format`)
__all__ = ["ENCODINGS", "FORMATS", "ParsedFile", "parse"]

# The generic CSV's trailer: `#rows,N` as its last line says the file has N rows (docs).
TRAILER = "#rows"


def parse(source: Source, require_trailer: bool = False) -> ParsedFile:
    """The generic CSV (the UnionPay-style file is a `fixed` profile: settle/fixed.py)."""
    return _parse_generic(source, require_trailer)


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
    lines = _Lines(text)
    reader = csv.reader(lines.feed())
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
    parsed = ParsedFile(name, kind, "generic", source.encoding, no_blocks())
    parsed.blocks = _generic_blocks(parsed, header, reader, lines, require_trailer)
    return parsed


class _Lines:
    """The file's lines, read a block at a time: a block of plain lines is cut and converted
    whole (fastrows.convert_lines); any other block is handed back (`pending`) to the CSV
    reader, which reads on from the file when a quoted field runs past the block. `taken`
    counts the lines the reader never saw, so its own count plus `taken` is the file's line."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self.text = text
        self.pending: deque[str] = deque()
        self.taken = 0

    def feed(self) -> Generator[str, None, None]:
        while True:
            while self.pending:
                yield self.pending.popleft()
            line = self.text.readline()
            if not line:
                return
            yield line

    def block(self) -> list[str]:
        return list(islice(self.text, BLOCK_ROWS))


_TRAILER_STARTS = frozenset("# \t")


def _generic_blocks(
    parsed: ParsedFile,
    header: list[str],
    reader: Any,
    lines: _Lines,
    require_trailer: bool,
) -> Generator[Block, None, None]:
    name, kind = parsed.name, parsed.kind
    count = 0
    trailer: tuple[int, int] | None = None  # (line, rows it declares)
    block: list[tuple[int, list[str]]] = []
    # Detail rows are first tried a block of lines at a time; the reader's loop below takes
    # a block that is not plain, and every line once the trailer is read.
    by_lines = kind == "detail" and splits(header)

    def flush() -> list[Block]:
        # Rows read so far, converted: any error in them comes before one found later.
        done = _convert_block(name, kind, header, block)
        block.clear()
        return [done] if done else []

    with lines.text:
        try:
            while True:
                if by_lines and trailer is None:
                    chunk = lines.block()
                    if not chunk:
                        break
                    at = lines.taken + reader.line_num + 1  # the chunk's first line
                    fast = convert_lines(header, at, chunk)
                    if fast is not None:
                        lines.taken += len(chunk)
                        count += len(chunk)
                        yield fast
                        continue
                    lines.pending.extend(chunk)
                for values in reader:
                    line = lines.taken + reader.line_num
                    first = values[0] if values else ""
                    # A row whose first cell has text is no blank line: the all() only runs for
                    # the rare row that starts empty.
                    if not first.strip() and all(not v.strip() for v in values):
                        pass
                    elif trailer is not None:
                        yield from flush()
                        raise InputError(
                            f"{name}: line {line}: a row after the trailer ({TRAILER})"
                        )
                    elif first[:1] in _TRAILER_STARTS and first.strip() == TRAILER:
                        trailer = (line, _trailer_count(name, line, values))
                    elif len(values) != len(header):
                        yield from flush()
                        raise InputError(
                            f"{name}: line {line}: {len(values)} fields, "
                            f"the header has {len(header)}"
                        )
                    else:
                        count += 1
                        block.append((line, values))
                        if len(block) >= BLOCK_ROWS:
                            yield from flush()
                    if by_lines and trailer is None and not lines.pending:
                        break  # the block handed back is read: try the next one whole
                else:
                    break  # the end of the file
                yield from flush()
        except csv.Error as exc:
            yield from flush()
            raise InputError(f"{name}: line {lines.taken + reader.line_num}: {exc}") from None
        yield from flush()
    if trailer is None:
        if require_trailer:
            raise InputError(
                f"{name}: line {lines.taken + reader.line_num + 1}: no trailer: a generic CSV "
                f"ends with `{TRAILER},N` (its N rows); without it a file cut at a line "
                "boundary looks complete (--allow-no-trailer accepts it unchecked)"
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
) -> Block:
    if not block:
        return []
    if kind == "detail":
        fast = convert_block(header, block)
        if fast is not None:
            return fast
    rows = [convert(name, n, kind, dict(zip(header, values, strict=True))) for n, values in block]
    return as_block(kind, rows)


def _trailer_count(name: str, line: int, values: list[str]) -> int:
    count = values[1].strip() if len(values) == 2 else ""
    if not (count.isascii() and count.isdigit()):
        raise InputError(
            f"{name}: line {line}: field rows: bad trailer {','.join(values)!r}: "
            f"expected {TRAILER},N (the number of rows)"
        )
    return int(count)
