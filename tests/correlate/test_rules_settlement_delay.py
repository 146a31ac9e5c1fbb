"""The merchant's own settlement settings (DESIGN §2.3 `settlement_delay`): delayed settlement
(延时结算, in working days) and a reserve (a rate of each payout, released on a date), both
from the merchants file. Money they hold is `pending` until the date they give, not short.

2025-01-07 is a Tuesday: T1 pays on the 8th; 3 working days later is Monday the 13th.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daozhang.correlate.data import load
from daozhang.correlate.render import explain
from daozhang.errors import InputError
from daozhang.settle.importer import import_file

from tests.correlate.builder import M1, Shop, day, facts


def test_a_delayed_merchant_is_not_due_on_the_t1_date(any_shop: Shop) -> None:
    any_shop.merchant(M1, delay_days=3)
    s = any_shop.sale("2025-01-07 15:00", amt=123_450)
    any_shop.detail_file("2025-01-08")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == (
        "pending",
        "settlement_delay",
        day("2025-01-13"),
    )
    assert (f.short_fen, f.held_fen) == (0, 123_450)
    assert facts(f, "merchant") == [
        "merchant setting: settlement delayed 3 working day(s), from 2025-01-08 to 2025-01-13"
    ]
    text = explain(f)
    assert text["zh"].startswith("2025-01-07 15:00:00的¥1234.50交易：其中¥1234.50按商户结算设置")
    assert "延时结算" in text["zh"] and "2025年1月13日到账" in text["zh"]
    assert "下一步：预计2025年1月13日到账，无需处理" in text["zh"]
    assert "delayed-settlement or reserve setting holds this money until 2025-01-13" in text["en"]
    assert "Next: Expected on 2025-01-13: nothing to do" in text["en"]


def test_a_cleared_sale_waiting_for_its_delayed_payout_is_pending(shop: Shop) -> None:
    shop.merchant(M1, delay_days=2)
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")  # cleared on T1, the payout comes two working days later
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == (
        "pending",
        "settlement_delay",
        day("2025-01-10"),
    )


def test_past_the_delayed_date_it_is_missing_again(shop: Shop) -> None:
    shop.merchant(M1, delay_days=1)
    s = shop.sale("2025-01-07 15:00")
    shop.detail_file("2025-01-08")
    f = shop.run("2025-01-10 12:00").of(s)
    assert (f.status, f.cause) == ("gap", "unknown")
    assert facts(f, "merchant") == [
        "merchant setting: settlement delayed 1 working day(s), from 2025-01-08 to 2025-01-09"
    ]


def test_a_reserve_retained_as_agreed_is_held_until_its_release(any_shop: Shop) -> None:
    any_shop.merchant(M1, reserve_rate="0.1000", reserve_release="2025-04-01")
    s = any_shop.sale("2025-01-07 15:00")
    any_shop.cleared(s, on="2025-01-08")
    any_shop.payout("2025-01-08", retained=994)  # 10 % of the 99.40 plan
    found = any_shop.run("2025-01-09 12:00")
    f = found.of(s)
    assert (f.status, f.cause, f.expected_date) == (
        "pending",
        "settlement_delay",
        day("2025-04-01"),
    )
    assert (f.paid_fen, f.short_fen, f.held_fen) == (8_946, 0, 994)
    p = found.payout("PO000120250108")
    assert (p.status, p.cause, p.expected_date) == (
        "pending",
        "settlement_delay",
        day("2025-04-01"),
    )
    assert (p.paid_fen, p.short_fen, p.held_fen) == (8_946, 0, 994)
    assert facts(p, "merchant") == [
        "reserve 0.1000 of each payout, released on 2025-04-01: 994 fen of payout PO000120250108"
        " retained"
    ]
    zh, en = explain(p)["zh"], explain(p)["en"]
    assert (
        "出款PO000120250108（计划¥99.40，实到¥89.46）：其中¥9.94按商户结算设置留存至2025年4月1日"
        in zh
    )
    assert "¥9.94 of it is held by the merchant's settlement setting until 2025-04-01" in en


def test_more_retained_than_the_reserve_is_a_risk_hold(shop: Shop) -> None:
    shop.merchant(M1, reserve_rate="0.1000", reserve_release="2025-04-01")
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", retained=3_000)
    found = shop.run("2025-01-09 12:00")
    assert (found.of(s).status, found.of(s).cause) == ("settled_short", "risk_hold")
    assert found.payout("PO000120250108").cause == "risk_hold"


def test_a_reserve_past_its_release_date_is_a_risk_hold(shop: Shop) -> None:
    shop.merchant(M1, reserve_rate="0.1000", reserve_release="2025-01-09")
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", retained=994)
    f = shop.run("2025-01-10 12:00").of(s)
    assert (f.status, f.cause, f.short_fen) == ("settled_short", "risk_hold", 994)
    assert "the reserve's release date 2025-01-09 has passed" in facts(f, "merchant")


def test_the_settings_are_read_from_the_merchants_file(tmp_path: Path, shop: Shop) -> None:
    path = tmp_path / "m.csv"
    head = (
        "merchant_id,acquirer_code,fee_rate,debit_cap,d0_surcharge,settle_type,"
        "bank_account_masked,status,delay_days,reserve_rate,reserve_release,terminal_ids\n"
    )
    path.write_text(
        head + f"{M1},ACQ1,0.0060,,,T1,6222****0001,active,2,0.0500,2025-03-01,10000001;10000002\n"
    )
    import_file(shop.store, path)
    m = load(shop.store).merchants[M1]
    assert (m.delay_days, m.reserve_rate, m.reserve_release) == (2, "0.0500", "2025-03-01")
    assert m.terminals == ("10000001", "10000002")
    bad = tmp_path / "bad.csv"
    bad.write_text(head + f"{M1},ACQ1,0.0060,,,T1,6222****0001,active,400,,,\n")
    with pytest.raises(InputError, match=r"bad\.csv: line 2: field delay_days: bad value '400'"):
        import_file(shop.store, bad)
