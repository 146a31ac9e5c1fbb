"""What a reader hands the importer: a parsed file and its rows in blocks of tuples.

A row is a tuple in the order of `COLUMNS[kind]` (its line first, then the columns the store
keeps), and rows come a block at a time, so the importer stores a block with one
`executemany` and never builds a dict per row (issue 25: a dict and an `itemgetter` per row
were a fifth of the import). Readers that convert field by field still build a dict per row
(its error names the field); `in_blocks` turns those into blocks.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

Block = list[tuple[Any, ...]]

# kind -> the row's keys in a block's tuples (the store's column names, settle/schema.py).
COLUMNS: dict[str, tuple[str, ...]] = {
    "detail": (
        "line",
        "settle_date",
        "mid",
        "tid",
        "txn_time",
        "typ",
        "ch",
        "bat",
        "trc",
        "rrn",
        "orrn",
        "pan",
        "ck",
        "amt",
        "fee",
        "settle_amt",
        "direction",
        "settle_type",
        "check_flag",
        "payout_id",
        "ord",
        "xid",
    ),
    "payout": (
        "line",
        "payout_id",
        "mid",
        "settle_type",
        "settle_date",
        "plan_fen",
        "fee_fen",
        "suspend_fen",
        "retained_fen",
        "real_fen",
        "state",
        "fail_reason",
        "bank_account",
    ),
    "merchants": (
        "line",
        "mid",
        "acquirer",
        "fee_rate",
        "debit_cap_fen",
        "d0_surcharge",
        "settle_type",
        "bank_account",
        "status",
        "delay_days",
        "reserve_rate",
        "reserve_release",
        "terminals",
    ),
}
BLOCK_ROWS = 1000  # rows a reader converts and the importer stores together


def column(kind: str, key: str) -> int:
    """Where `key` sits in a row tuple of `kind`."""
    return COLUMNS[kind].index(key)


def as_block(kind: str, rows: list[dict[str, Any]]) -> Block:
    pick = itemgetter(*COLUMNS[kind])
    return [pick(r) for r in rows]


def in_blocks(
    kind: str, rows: Generator[dict[str, Any], None, None]
) -> Generator[Block, None, None]:
    """Rows converted one at a time, handed on a block at a time (closing `rows` when done or
    closed, so its file is closed too)."""
    block: list[dict[str, Any]] = []
    with closing(rows):
        for row in rows:
            block.append(row)
            if len(block) >= BLOCK_ROWS:
                yield as_block(kind, block)
                block = []
    if block:
        yield as_block(kind, block)


def no_blocks() -> Generator[Block, None, None]:
    yield from ()


@dataclass
class ParsedFile:
    name: str
    kind: str  # detail | payout | merchants
    format: str
    encoding: str
    blocks: Generator[Block, None, None]  # read once; closes the file when done or closed
    acquirer: str = ""
    file_date: str | None = None  # a header's date, when the format has one
    # Once the rows are read: whether a count in the file (a trailer) was checked against them.
    counted: bool | None = None
