"""Money due, the acquirer's file imported, and no row or payout for it (DESIGN §2.2
`acquirer_side`, `unknown`): decided across merchants. At least 3 merchants of one acquirer
unpaid on one expected date, with no outage within 10 minutes of their sales, is the acquirer's
problem; fewer is `unknown`.
"""

from __future__ import annotations

from typing import Any

from tests.correlate.builder import M1, M2, M3, M4, Shop, day, facts


def _unpaid(shop: Shop, *mids: str, at: str = "2025-01-07 15:00") -> list[dict[str, Any]]:
    """One approved sale per merchant, each on its own terminal and device; no acquirer row."""
    return [
        shop.sale(at, mid=mid, tid=f"{n + 1}0000001", dev=f"DEV0000{n + 1}")
        for n, mid in enumerate(mids)
    ]


def test_three_healthy_merchants_unpaid_on_one_acquirer_day_is_acquirer_side(
    any_shop: Shop,
) -> None:
    sales = _unpaid(any_shop, M1, M2, M3)
    any_shop.detail_file("2025-01-08")
    found = any_shop.run("2025-01-09 12:00")
    for s in sales:
        f = found.of(s)
        assert (f.status, f.cause, f.data) == ("gap", "acquirer_side", "complete")
        assert (f.expected_date, f.amount_fen, f.paid_fen) == (day("2025-01-08"), 10_000, 0)
        assert facts(f, "settlement_file") == ["detail file for ACQ1 2025-01-08 imported; no row"]
        assert facts(f, "settlement_row") == ["3 healthy merchants of ACQ1 unpaid on 2025-01-08"]


def test_two_merchants_unpaid_is_unknown(shop: Shop) -> None:
    sales = _unpaid(shop, M1, M2)
    shop.detail_file("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    for s in sales:
        f = found.of(s)
        assert (f.status, f.cause, f.confidence) == ("gap", "unknown", 0.5)
        assert facts(f, "settlement_row") == ["only 2 merchant(s) of ACQ1 unpaid on 2025-01-08"]


def test_merchants_are_counted_not_transactions(shop: Shop) -> None:
    sales = [shop.sale(at) for at in ("2025-01-07 15:00", "2025-01-07 16:00", "2025-01-07 17:00")]
    shop.detail_file("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    assert {found.of(s).cause for s in sales} == {"unknown"}


def test_merchants_of_another_acquirer_are_not_counted(shop: Shop) -> None:
    shop.merchant(M3, acquirer="ACQ2")
    sales = _unpaid(shop, M1, M2, M3)
    shop.detail_file("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    assert [found.of(s).cause for s in sales] == ["unknown"] * 3


def test_merchants_unpaid_on_another_date_are_not_counted(shop: Shop) -> None:
    sales = _unpaid(shop, M1, M2) + _unpaid(shop, M3, at="2025-01-08 15:00")
    shop.detail_file("2025-01-08")
    shop.cleared(on="2025-01-09", at="2025-01-08 16:00", amt=1_000, mid=M4)  # 01-09's file
    found = shop.run("2025-01-10 12:00")
    assert [found.of(s).cause for s in sales] == ["unknown"] * 3


def test_an_outage_ten_minutes_before_a_sale_makes_its_merchant_not_healthy(shop: Shop) -> None:
    sales = _unpaid(shop, M1, M2, M3)
    shop.outage("2025-01-07 14:40", "2025-01-07 14:50:00", dev="DEV00003")
    shop.detail_file("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    assert [found.of(s).cause for s in sales] == ["unknown"] * 3
    assert facts(found.of(sales[0]), "settlement_row") == [
        "only 2 merchant(s) of ACQ1 unpaid on 2025-01-08"
    ]


def test_an_outage_ended_more_than_ten_minutes_before_leaves_the_merchant_healthy(
    shop: Shop,
) -> None:
    sales = _unpaid(shop, M1, M2, M3)
    shop.outage("2025-01-07 14:40", "2025-01-07 14:49:59", dev="DEV00003")
    shop.detail_file("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    assert [found.of(s).cause for s in sales] == ["acquirer_side"] * 3


def test_detail_rows_missing_from_the_payouts_count_with_receipts_missing_from_the_rows(
    shop: Shop,
) -> None:
    """A row whose payout is in no imported payout file waits on the acquirer too."""
    sales = _unpaid(shop, M1, M2, M3, M4)
    shop.cleared(sales[3], on="2025-01-08")
    shop.payout("2025-01-08", M2, plan=1_000)  # the payout file for the day is imported
    shop.detail_file("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    f = found.of(sales[3])
    assert (f.status, f.cause, f.payout_id) == ("gap", "acquirer_side", "PO000420250108")
    assert facts(f, "payout")[0] == "payout PO000420250108 is in no imported payout file"
    assert "4 healthy merchants of ACQ1 unpaid on 2025-01-08" in facts(f, "settlement_row")


def test_a_row_the_acquirer_did_not_settle_is_unknown(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08", flag="B")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.confidence) == ("gap", "unknown", 0.6)
    assert (f.expected_date, f.paid_fen) == (day("2025-01-08"), 0)
    assert "flag B" in facts(f, "settlement_row")[0]


def test_an_acquirer_row_the_acquirer_did_not_settle_without_a_receipt_is_not_expected(
    shop: Shop,
) -> None:
    row = shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=5_000, flag="B")
    refund = shop.cleared(
        on="2025-01-08", at="2025-01-07 16:00", amt=5_000, typ="refund", direction="refund"
    )
    found = shop.run("2025-01-09 12:00")
    assert (found.of(row).status, found.of(row).cause) == ("not_expected", "")
    assert (found.of(refund).status, found.of(refund).cause) == ("not_expected", "")


def test_the_unknown_merchant_of_a_group_keeps_its_evidence_in_path_order(shop: Shop) -> None:
    (s,) = _unpaid(shop, M1)
    shop.detail_file("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert f.cause == "unknown"
    src = [e[0] for e in f.evidence]
    assert src == ["receipt", "policy", "settlement_file", "settlement_row"]
