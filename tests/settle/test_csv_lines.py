"""A generic detail CSV's plain lines are cut by `str.split` a block at a time
(settle/fastrows.py `convert_lines`), any other block by the CSV reader (settle/parse.py): the
same rows, the same line numbers and the same errors as the reader's loop alone, whatever
falls where (a quoted cell, a blank line, a cell running over a block's end, the trailer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daozhang.errors import InputError
from daozhang.lab.sim.files import csv_bytes
from daozhang.settle import fastrows
from daozhang.settle import parse as P
from daozhang.settle.source import scan

from tests.settle.test_import import detail

Read = tuple[list[tuple[Any, ...]], bool | None] | str


def _read(path: Path, require_trailer: bool = False) -> Read:
    parsed = P.parse(scan(str(path), path), require_trailer)
    try:
        rows = [row for block in parsed.blocks for row in block]
    except InputError as exc:
        return str(exc)
    return rows, parsed.counted


def _both(
    path: Path, monkeypatch: pytest.MonkeyPatch, require_trailer: bool = False
) -> tuple[Read, Read, int]:
    """(by lines, by the reader alone, blocks the lines path converted)."""
    taken = []

    def counted(header: list[str], first: int, lines: list[str]) -> Any:
        got = fastrows.convert_lines(header, first, lines)
        taken.append(got is not None)
        return got

    with monkeypatch.context() as m:
        m.setattr(P, "convert_lines", counted)
        by_lines = _read(path, require_trailer)
    with monkeypatch.context() as m:
        m.setattr(P, "splits", lambda header: False)
        by_reader = _read(path, require_trailer)
    return by_lines, by_reader, sum(taken)


def _lines(n: int) -> list[bytes]:
    """A detail file of n rows and its trailer, as lines without their line ends."""
    return csv_bytes("detail", [detail(i) for i in range(1, n + 1)]).split(b"\r\n")[:-1]


def _write(path: Path, lines: list[bytes], end: bytes = b"\r\n") -> Path:
    path.write_bytes(b"".join(line + end for line in lines))
    return path


@pytest.mark.parametrize("end", [b"\r\n", b"\n"])
def test_plain_lines_give_the_readers_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, end: bytes
) -> None:
    path = _write(tmp_path / "detail_20250107.csv", _lines(2500), end)
    by_lines, by_reader, taken = _both(path, monkeypatch)
    assert by_lines == by_reader
    assert not isinstance(by_lines, str) and len(by_lines[0]) == 2500 and by_lines[1] is True
    assert taken == 2  # lines 2-1001 and 1002-2001; the last block holds the trailer


def test_blocks_the_lines_path_hands_back_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = _lines(4000)
    lines[100] = lines[100].replace(b"P20250107A", b'"P20250107A"')  # quoted: the reader's
    lines[1500:1500] = [b"", b",,,,,,,,,,,,,,,,,,"]  # blank rows, skipped
    # A quoted RRN over two lines, from the last line of a block (lines 2002-3001) on.
    cells = lines[3000].split(b",")
    rrn = cells[8]
    head, tail = b",".join([*cells[:8], b'"' + rrn[:6]]), b",".join([rrn[6:] + b'"', *cells[9:]])
    lines[3000:3001] = [head, tail]
    path = _write(tmp_path / "detail_20250107.csv", lines)
    by_lines, by_reader, taken = _both(path, monkeypatch)
    assert isinstance(by_lines, str) and by_lines == by_reader
    assert "line 3002: field rrn: bad value" in by_lines  # where the reader ended the row
    # Without the cell over two lines: the quoted and the blank rows, and every row read.
    lines = _lines(4000)
    lines[100] = lines[100].replace(b"P20250107A", b'"P20250107A"')
    lines[1500:1500] = [b"", b",,,,,,,,,,,,,,,,,,"]
    path = _write(tmp_path / "detail_20250107.csv", lines)
    by_lines, by_reader, taken = _both(path, monkeypatch)
    assert by_lines == by_reader
    assert not isinstance(by_lines, str) and len(by_lines[0]) == 4000
    assert [row[0] for row in by_lines[0]][1498:1500] == [1500, 1503]  # lines, past the blanks
    assert taken == 2  # lines 2002-3001, 3002-4001


def test_errors_name_the_same_line_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases: dict[str, tuple[list[bytes], str]] = {}
    bad = _lines(3000)
    bad[2300] = bad[2300].replace(b"622848******1234", b"6228481234")
    cases["a bad value after plain blocks"] = (bad, "line 2301: field card_masked")
    short = _lines(3000)
    short[1200] = short[1200].rsplit(b",", 1)[0]
    cases["a row one cell short"] = (short, "line 1201: 18 fields, the header has 19")
    after = _lines(2000)
    after.append(after[5])
    cases["a row after the trailer"] = (after, "line 2003: a row after the trailer")
    cut = _lines(2500)
    del cut[1700:1800]
    cases["a trailer that does not count them"] = (cut, "the trailer says 2500 rows")
    full_width = _lines(1500)
    full_width[700] = full_width[700].replace(b",000700,", ",00070０,".encode())
    cases["a full-width digit"] = (full_width, "line 701: field trace_no")
    for why, (lines, expected) in cases.items():
        path = _write(tmp_path / "detail_20250107.csv", lines)
        by_lines, by_reader, _ = _both(path, monkeypatch)
        assert isinstance(by_lines, str) and expected in by_lines, why
        assert by_lines == by_reader, why
    no_trailer = _write(tmp_path / "detail_20250107.csv", _lines(2000)[:-1])
    by_lines, by_reader, _ = _both(no_trailer, monkeypatch, require_trailer=True)
    assert by_lines == by_reader and "line 2002: no trailer" in str(by_lines)


def test_other_columns_and_orders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A column the store does not keep is carried through unread; a header whose first
    column is one (its cells could be blank or `#rows`) is read by the reader alone."""
    lines = _lines(1200)
    header = lines[0].split(b",")
    order = [*reversed(range(len(header)))]
    moved = [b",".join(line.split(b",")[i] for i in order) for line in lines[1:-1]]
    for extra, first in ((b"note", False), (b"note", True)):
        head = b",".join(header[i] for i in order)
        rows = [m + b",x" if not first else b"x," + m for m in moved]
        head = head + b"," + extra if not first else extra + b"," + head
        path = _write(tmp_path / "detail_20250107.csv", [head, *rows, lines[-1]])
        by_lines, by_reader, taken = _both(path, monkeypatch)
        assert by_lines == by_reader
        assert not isinstance(by_lines, str) and len(by_lines[0]) == 1200
        assert taken == (0 if first else 1)
