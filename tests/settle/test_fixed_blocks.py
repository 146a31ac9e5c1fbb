"""Fixed-width records are converted a block at a time (settle/profile_block.py), for every
fixed profile: daozhang's UnionPay-style file and UnionPay's ZM, ACOM and ACOMA files. On
damaged records the block path gives the same rows as record by record (settle/table.py
`to_row`) or hands the block back, and then the same error; a bad record in a later block
still refuses the whole file with its line and field, storing nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from daozhang.errors import InputError
from daozhang.lab.sim.files import csv_bytes, fixed_width_bytes
from daozhang.schema import open_database
from daozhang.settle import profiles as P
from daozhang.settle.fixed import _convert, _Cutter
from daozhang.settle.importer import import_file
from daozhang.settle.parsed import as_block
from daozhang.settle.profile_block import convert_fixed_block
from daozhang.settle.table import to_row
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.settle.test_import import counts, detail

SAMPLES = Path(__file__).with_name("samples")
DAY = date(2025, 1, 7)
PROFILES = P.load()


def _own_records(rows: list[dict[str, Any]], encoding: str = "gbk") -> list[bytes]:
    """The D records a file of `rows` carries."""
    lines = fixed_width_bytes("2025-01-07", "ACQ2", rows, encoding).split(b"\r\n")
    return [line for line in lines if line.startswith(b"D")]


def _record_by_record(profile: P.Profile, block: list[tuple[int, bytes]]) -> Any:
    cutter = _Cutter("f.txt", "gbk", profile)
    try:
        return as_block(
            "detail", [to_row("f.txt", n, profile, cutter.cells(n, r), {}, DAY) for n, r in block]
        )
    except InputError as exc:
        return str(exc)


def _both_ways(profile: P.Profile, block: list[tuple[int, bytes]]) -> None:
    """The block path's rows, when it takes the block, are record by record's; the reader's
    conversion (block, else record by record) gives the same rows or the same error."""
    slow = _record_by_record(profile, block)
    cutter = _Cutter("f.txt", "gbk", profile)
    texts = [cutter.texts(raw) for _, raw in block]
    if None not in texts:
        fast = convert_fixed_block(profile, cutter.names, [n for n, _ in block], texts, DAY)  # type: ignore[arg-type]
        assert fast is None or fast == slow
    try:
        got: Any = _convert("f.txt", profile, cutter, block, DAY)
    except InputError as exc:
        got = str(exc)
    assert got == slow


# Damage a record the way files are damaged: each gives the same rows or the same error both
# ways (a bad value, a code no table has, a tab, a leap second, a cut character, a sign).
_OWN_DAMAGE = [
    (b"", b""),
    (b" SALE ", b" VOID "),
    (b" SALE ", b" RFND "),
    (b" SALE ", b" XXXX "),
    (b" C ", b" Q "),
    (b" +000000000060 ", b" -000000000060 "),
    (b" +000000000060 ", b" 0000000000060 "),
    (b" 000001 ", b" 00000\t "),
    (b"102", b"160", 1),  # txn_time 10:20:00 -> a minute 60
    (b"00 SALE ", b"60 SALE "),  # a leap second, which strptime refuses
    (b"20250107", b"20250230", 1),
    (b"20250107", b"2025O107", 1),
    (b" I T1 ", b" F T1 "),
    (b" Y ", b" B "),
    (b" Y ", b" X "),
    (b"\xb1\xe3\xc0\xfb\xb5\xea", b"\xb1\xe3\xc0\xfb\xb5\xea"[:-1] + b" "),  # a cut GBK character
]


@settings(deadline=None)  # no timing in tests: a loaded machine is not a failure
@given(
    st.lists(
        st.tuples(
            st.integers(1, 999),
            st.integers(0, len(_OWN_DAMAGE) - 1),
            st.sampled_from(["上海测试便利店", "", "ABC"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_own_file_blocks_convert_as_record_by_record(picks: list[tuple[int, int, str]]) -> None:
    profile = PROFILES["unionpay-fixed"]
    rows = [{**detail(n), "merchant_name": name} for n, _, name in picks]
    block = []
    for i, (raw, (_, damage, _)) in enumerate(zip(_own_records(rows), picks, strict=True)):
        old, new, *count = _OWN_DAMAGE[damage]
        block.append((i + 2, raw.replace(old, new, *count) if old else raw))
    _both_ways(profile, block)


_SAMPLES = {
    "unionpay-zm": SAMPLES / "INN25010701ZM_898310048161234",
    "unionpay-acom": SAMPLES / "IND25010701ACOM",
    "unionpay-acoma": SAMPLES / "IND25010701ACOMA",
}
# UnionPay's layouts: a type no table has, a sign letter, a minute 60, a short merchant id,
# a full-width digit, a year's last day (a December sale in a January file), a masked card.
_THEIR_DAMAGE = [
    (b"", b""),
    (b" 0200 000000 ", b" 0200 999999 "),
    (b" 0200 000000 ", b" 0200 200000 "),
    (b" 01 ", b" 04 "),
    (b" 01 ", b" 77 "),
    (b"D000000000015", b"X000000000015"),
    (b"D000000000015", b"C000000000015"),
    (b"0107091502", b"0107096002"),
    (b"0107091502", b"0107091560"),
    (b"0107091502", b"1231235959"),
    (b"0107102000", b"0230102000"),
    (b"898310048161234", b"8983   48161234"),
    (b"000000002500", b"00000000250\xa3\xb1"[:12]),
    (b"6214830012341234   ", b"621483******1234   "),
    (b"000000012880", b"00000001288 "),
]


@settings(deadline=None)
@given(
    st.sampled_from(sorted(_SAMPLES)),
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, len(_THEIR_DAMAGE) - 1)), max_size=6),
)
def test_unionpay_blocks_convert_as_record_by_record(
    name: str, picks: list[tuple[int, int]]
) -> None:
    profile = PROFILES[name]
    records = [r for r in _SAMPLES[name].read_bytes().split(b"\r\n") if r.strip()]
    block = []
    for i, (which, damage) in enumerate(picks or [(0, 0)]):
        old, new = _THEIR_DAMAGE[damage]
        raw = records[which % len(records)].replace(old, new, 1)
        block.append((i + 1, raw.ljust(profile.record_bytes, b" ")[: profile.record_bytes]))
    _both_ways(profile, block)


@pytest.mark.parametrize("name", ["unionpay-fixed", *_SAMPLES])
def test_a_plain_block_takes_the_block_path(name: str) -> None:
    profile = PROFILES[name]
    if name == "unionpay-fixed":
        records = _own_records([detail(n) for n in range(1, 6)])
    else:
        records = [r for r in _SAMPLES[name].read_bytes().split(b"\r\n") if r.strip()]
    cutter = _Cutter("f.txt", "gbk", profile)
    block = [(n, r.ljust(profile.record_bytes, b" ")) for n, r in enumerate(records, start=1)]
    texts = [cutter.texts(raw) for _, raw in block]
    fast = convert_fixed_block(profile, cutter.names, [n for n, _ in block], texts, DAY)  # type: ignore[arg-type]
    assert fast is not None and fast == _record_by_record(profile, block)


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
