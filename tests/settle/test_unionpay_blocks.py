"""The UnionPay-style fixed-width file is converted a block at a time (settle/unionpay_read.py):
the same rows as record by record on varied records, and a bad record in a later block still
refuses the whole file with its line and field, storing nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daozhang.errors import InputError
from daozhang.lab.sim.files import csv_bytes, fixed_width_bytes
from daozhang.schema import open_database
from daozhang.settle import unionpay
from daozhang.settle import unionpay_read as U
from daozhang.settle.importer import import_file
from daozhang.settle.parsed import as_block
from hypothesis import given
from hypothesis import strategies as st

from tests.settle.test_import import counts, detail


def _records(rows: list[dict[str, Any]], encoding: str = "gbk") -> list[bytes]:
    """The D records a file of `rows` carries."""
    lines = unionpay.write("2025-01-07", "ACQ2", rows, encoding).split(b"\r\n")
    return [line for line in lines if line.startswith(b"D")]


def _record_by_record(block: list[tuple[int, bytes]]) -> Any:
    try:
        return as_block("detail", [U._unionpay_row("f.txt", "gbk", n, raw) for n, raw in block])
    except InputError as exc:
        return str(exc)


def _by_block(block: list[tuple[int, bytes]]) -> Any:
    try:
        return U._unionpay_block("f.txt", "gbk", block)
    except InputError as exc:
        return str(exc)


# Damage a record the way files are damaged: each gives the same rows or the same error both
# ways (a bad value, a code no table has, a tab, a leap second, a cut character, a short line).
_DAMAGE = [
    (b"", b""),
    (b" SALE ", b" VOID "),
    (b" SALE ", b" RFND "),
    (b" SALE ", b" XXXX "),
    (b" C ", b" Q "),
    (b" +000000000060 ", b" -000000000060 "),
    (b" +000000000060 ", b" 0000000000060 "),
    (b" 000001 ", b" 00000\t "),
    (b"102", b"160", 1),  # txn_time 10:20:00 -> a minute 60
    (b"20250107", b"20250230", 1),
    (b"20250107", b"2025O107", 1),
    (b" I T1 ", b" F T1 "),
    (b" Y ", b" B "),
    (b"\xb1\xe3\xc0\xfb\xb5\xea", b"\xb1\xe3\xc0\xfb\xb5\xea"[:-1] + b" "),  # a cut GBK character
]


@given(
    st.lists(
        st.tuples(
            st.integers(1, 999),
            st.integers(0, len(_DAMAGE) - 1),
            st.sampled_from(["上海测试便利店", "", "ABC"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_blocks_convert_as_record_by_record(picks: list[tuple[int, int, str]]) -> None:
    rows = [{**detail(n), "merchant_name": name} for n, _, name in picks]
    block = []
    for i, (raw, (_, damage, _)) in enumerate(zip(_records(rows), picks, strict=True)):
        old, new, *count = _DAMAGE[damage]
        block.append((i + 2, raw.replace(old, new, *count) if old else raw))
    assert _by_block(block) == _record_by_record(block)


def test_a_plain_block_is_cut_at_c_speed_into_what_to_generic_gives() -> None:
    raw = _records([detail(7)])[0]
    fields = unionpay.to_generic(unionpay.split(raw, unionpay.DETAIL, "gbk"))
    assert unionpay.generic_cells(raw, "gbk") == [fields[name] for name, _ in unionpay.DETAIL[1:-1]]
    assert unionpay.generic_cells(raw.replace(b" SALE ", b" XXXX "), "gbk") is None


@pytest.mark.parametrize("fmt", ["unionpay", "generic"])
def test_a_bad_row_in_a_later_block_refuses_the_file(
    sqlite_url: str, tmp_path: Path, fmt: str
) -> None:
    rows = [detail(n) for n in range(1, 2501)]  # three blocks of rows
    rows[2199]["check_flag"] = "X"
    path = tmp_path / "detail_20250107.txt"
    path.write_bytes(
        fixed_width_bytes("2025-01-07", "ACQ2", rows)
        if fmt == "unionpay"
        else csv_bytes("detail", rows)
    )
    with open_database(sqlite_url) as store, pytest.raises(InputError) as err:
        import_file(store, path)
    # Line 2201: the header is line 1, the 2,200th row line 2201.
    assert "line 2201: field check_flag: bad value 'X'" in str(err.value)
    assert counts(sqlite_url) == (0, 0, 0, 0)
