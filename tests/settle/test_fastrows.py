"""The block converter of generic detail rows (settle/fastrows.py) gives exactly what the
field-by-field one gives (settle/parse.py `convert`), and hands back whatever it does not
accept in full, so errors still name the file, line and field."""

from __future__ import annotations

from typing import Any

from daozhang.errors import InputError
from daozhang.settle import fastrows
from daozhang.settle import rows as R
from daozhang.settle.parse import convert
from daozhang.settle.parsed import COLUMNS, as_block
from hypothesis import given
from hypothesis import strategies as st

HEADER = list(R.DETAIL)


def _cells(amt: int, fee: int, when: str, yuan: str | None, **over: str) -> list[str]:
    net = amt - fee
    values = {
        "settle_date": "2025-01-07",
        "merchant_id": "898310048161234",
        "terminal_id": "10293847",
        "txn_time": when,
        "txn_type": "sale",
        "channel": "card",
        "batch_no": "000001",
        "trace_no": "000123",
        "rrn": "500600000123",
        "orig_rrn": "",
        "card_masked": "622848******1234",
        "card_kind": "D",
        "amount": yuan or f"{amt // 100}.{amt % 100:02d}",
        "fee": f"{'-' if fee < 0 else ''}{abs(fee) // 100}.{abs(fee) % 100:02d}",
        "settle_amount": f"{'-' if net < 0 else ''}{abs(net) // 100}.{abs(net) % 100:02d}",
        "fund_direction": "in",
        "settle_type": "T1",
        "check_flag": "Y",
        "payout_id": "P1",
        **over,
    }
    return [values[c] for c in HEADER]


def _slow(block: list[tuple[int, list[str]]]) -> list[tuple[Any, ...]]:
    rows = [convert("f.csv", n, "detail", dict(zip(HEADER, c, strict=True))) for n, c in block]
    return as_block("detail", rows)


def test_the_table_covers_every_documented_column() -> None:
    assert set(fastrows._PATTERNS) == set(R.DETAIL)
    # A block's tuples hold the CSV's columns in its documented order, after the line.
    assert [key for key, _ in R.DETAIL.values()] == list(COLUMNS["detail"][1:20])


@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**9),
            st.integers(-500, 500),
            st.sampled_from(["2025-01-07 00:00:00", "2024-02-29 23:59:59", "2025-12-31 12:30:05"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_blocks_convert_as_row_by_row(rows: list[tuple[int, int, str]]) -> None:
    block = [(i + 2, _cells(amt, fee, when, None)) for i, (amt, fee, when) in enumerate(rows)]
    assert fastrows.convert_block(HEADER, block) == _slow(block)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**7),
            st.integers(-500, 500),
            st.sampled_from(["in", "out", "refund", "frozen", "unfrozen"]),
            st.sampled_from(["Y", "B", "L"]),
            st.sampled_from(["sale", "void", "refund", "preauth_done"]),
            st.sampled_from(["", "500600000999"]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_blocks_of_every_direction_and_flag_convert_as_row_by_row(
    rows: list[tuple[int, int, str, str, str, str]],
) -> None:
    """Money out and rows not settled take the per-row sum check: the same rows, or the block
    handed back whenever one row would be refused."""
    block = []
    for i, (amt, fee, direction, flag, typ, orrn) in enumerate(rows):
        net = 0 if flag == "B" else (-amt - fee if direction in ("out", "refund") else amt - fee)
        over = {"fund_direction": direction, "check_flag": flag, "txn_type": typ, "orig_rrn": orrn}
        cells = _cells(amt, fee, "2025-01-07 10:00:00", None, **over)
        cells[HEADER.index("settle_amount")] = (
            f"{'-' if net < 0 else ''}{abs(net) // 100}.{abs(net) % 100:02d}"
        )
        block.append((i + 2, cells))
    assert fastrows.convert_block(HEADER, block) == _slow(block)


def test_what_the_block_converter_does_not_take_goes_the_slow_way() -> None:
    odd = {
        "short decimals": _cells(1230, 7, "2025-01-07 10:00:00", "12.3"),
        "leap second": _cells(100, 1, "2025-01-07 10:00:60", None),
        "no such day": _cells(100, 1, "2025-02-30 10:00:00", None),
        "full-width digit": _cells(100, 1, "2025-01-07 10:00:00", None, trace_no="00012３"),
        "a space": _cells(100, 1, "2025-01-07 10:00:00", None, rrn=" 500600000123"),
        "does not add up": _cells(100, 1, "2025-01-07 10:00:00", None, settle_amount="0.98"),
    }
    for why, cells in odd.items():
        block = [(2, _cells(100, 1, "2025-01-07 09:00:00", None)), (3, cells)]
        fast = fastrows.convert_block(HEADER, block)
        try:
            slow: Any = _slow(block)
        except InputError as exc:
            slow = str(exc)
        if why == "short decimals":
            assert fast == slow, why  # taken, and the same
        else:
            assert fast is None, why  # handed back: the slow path decides
            if why != "leap second" and why != "a space":
                assert isinstance(slow, str) and "line 3" in slow, why
