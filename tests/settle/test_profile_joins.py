"""Every built-in profile's sample correlates with the terminal's receipts, joined by the key
the file carries (DESIGN §2.3): RRN, else the order number, else the channel's transaction
id, else terminal + trace + date, else terminal + amount + time; the evidence says which."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daozhang.settle.importer import import_file

from tests.correlate.builder import ACQ, Shop, facts

SAMPLES = Path(__file__).with_name("samples")
WECHAT = SAMPLES / "wechat_tradebill_1900000109_20250107.csv"
ALIPAY = SAMPLES / "20880000000000010156_20250107_业务明细.csv"
ZM = SAMPLES / "INN25010701ZM_898310048161234"
ACOM = SAMPLES / "IND25010701ACOM"
ALLINPAY = SAMPLES / "allinpay_560581048161234_20250107.csv"
CHINAUMS = SAMPLES / "chinaums_898310058121234_20250107.csv"
MID = "898310048161234"

CASES: list[tuple[str, Path, str, int, dict[str, Any], str, int]] = [
    # (case, sample, sale time, amount, receipt keys, joined by, the row's line)
    (
        "wechat by order number",
        WECHAT,
        "2025-01-07 09:15:02",
        2500,
        {"tid": "POS00001", "ch": "qr", "rrn": "", "ord": "DZ20250107000001"},
        "order number (ord)",
        2,
    ),
    (
        "alipay by channel id",
        ALIPAY,
        "2025-01-07 10:00:03",
        3650,
        {"tid": "POS00002", "ch": "qr", "rrn": "", "xid": "2025010722001100000000000001"},
        "channel transaction id (xid)",
        6,
    ),
    (
        "unionpay-zm by queryId",
        ZM,
        "2025-01-07 09:15:02",
        2500,
        {"tid": "10293847", "rrn": "", "xid": "512501070915020000011"},
        "channel transaction id (xid)",
        1,
    ),
    (
        "unionpay-zm by terminal, trace and date",
        ZM,
        "2025-01-07 10:20:00",
        12880,
        {"tid": "10293847", "rrn": "", "trc": "100002"},
        "terminal + trace + date",
        2,
    ),
    (
        "unionpay-acom by RRN",
        ACOM,
        "2025-01-07 09:15:02",
        2500,
        {"tid": "10293847", "trc": "000011", "rrn": "500700000011"},
        "RRN",
        1,
    ),
    (
        "allinpay by RRN",
        ALLINPAY,
        "2025-01-07 12:30:45",
        30000,
        {"mid": "560581048161234", "tid": "20250001", "rrn": "501712304502"},
        "RRN",
        3,
    ),
    (
        "chinaums by terminal, amount and time",
        CHINAUMS,
        "2025-01-07 10:12:00",  # the terminal's clock, 110 s after the acquirer's
        100000,
        {"mid": "898310058121234", "tid": "31234567", "rrn": "", "trc": "999999"},
        "terminal + amount + time (within 10 min)",
        3,
    ),
]


@pytest.mark.parametrize(
    ("sample", "at", "amt", "keys", "how", "line"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_a_profiles_rows_join_the_receipts_and_say_how(
    sqlite_url: str,
    tmp_path: Path,
    sample: Path,
    at: str,
    amt: int,
    keys: dict[str, Any],
    how: str,
    line: int,
) -> None:
    shop = Shop(sqlite_url, tmp_path)
    try:
        receipt = shop.sale(at, amt, **{"mid": MID, **keys})
        import_file(shop.store, sample, acquirer=ACQ)
        found = shop.run("2025-01-07 20:00")
    finally:
        shop.close()
    f = found.of(receipt)
    assert f.row is not None and (f.row.line, f.row.amt) == (line, amt)
    assert facts(f, "settlement_row")[0].endswith(f", joined by {how}")


def test_a_refund_row_with_the_same_order_number_is_not_the_sales(
    sqlite_url: str, tmp_path: Path
) -> None:
    """WeChat's refund row repeats the sale's order number and channel id: told apart by type."""
    shop = Shop(sqlite_url, tmp_path)
    try:
        keys = {"tid": "POS00001", "ch": "qr", "rrn": "", "xid": "4200000001202501070000000001"}
        sale = shop.sale("2025-01-07 09:15:02", 2500, mid=MID, **keys)
        refund = shop.sale("2025-01-07 15:02:11", 2500, mid=MID, typ="refund", **keys)
        import_file(shop.store, WECHAT, acquirer=ACQ)
        found = shop.run("2025-01-07 20:00")
    finally:
        shop.close()
    row = found.of(sale).row
    assert row is not None and (row.typ, row.line) == ("sale", 2)
    assert found.of(refund).status == "not_expected"
    # The refund row went to the refund receipt: no finding says the terminal never sent it.
    alone = [g.row.line for g in found.transactions() if g.receipt is None and g.row]
    assert alone == [3]  # the lunch sale, which no receipt here names
