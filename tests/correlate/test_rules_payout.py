"""From the acquirer's row to the bank account (DESIGN §2.2 `settled`, `settled_short`,
`account_problem`, `risk_hold`, `fee`): transaction findings and payout findings.

The default merchant's agreed fee is 0.60 %: a 100.00 yuan sale nets 99.40.
"""

from __future__ import annotations

from tests.correlate.builder import M1, Shop, day, facts, sources


def test_paid_in_full_is_settled_with_the_row_and_the_payout_as_evidence(any_shop: Shop) -> None:
    s = any_shop.sale("2025-01-07 15:00")
    row = any_shop.cleared(s, on="2025-01-08")
    any_shop.payout("2025-01-08")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.data) == ("settled", "", "complete")
    assert (f.amount_fen, f.paid_fen, f.short_fen) == (10_000, 9_940, 0)
    assert (f.expected_date, f.payout_id, f.rrn) == (day("2025-01-08"), "PO000120250108", s["rrn"])
    assert sources(f) == ["receipt", "settlement_row", "payout"]
    assert facts(f, "settlement_row")[0].startswith(
        "acquirer row for 2025-01-08 (file 2 line 2): flag Y, amount 10000, fee 60, net 9940"
    )
    assert facts(f, "payout")[0].startswith("payout PO000120250108 on 2025-01-08: paid")
    assert row["rrn"] == s["rrn"]


def test_settled_the_long_way_agrees_with_the_short_path(shop: Shop) -> None:
    """A completion is not the fast path's approved sale: the general path says the same."""
    s = shop.sale("2025-01-07 15:00", typ="preauth_done")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("settled", "", 9_940, 0)
    assert f.expected_date == day("2025-01-08")


def test_a_failed_payout_is_an_account_problem(any_shop: Shop) -> None:
    any_shop.merchant(M1, status="closed")
    s = any_shop.sale("2025-01-07 15:00")
    any_shop.cleared(s, on="2025-01-08")
    any_shop.payout("2025-01-08", state="failed", reason="account closed")
    found = any_shop.run("2025-01-09 12:00")
    f = found.of(s)
    assert (f.status, f.cause, f.data) == ("gap", "account_problem", "complete")
    assert (f.amount_fen, f.paid_fen, f.short_fen) == (10_000, 0, 9_940)
    assert facts(f, "merchant") == ["merchant status closed"]
    assert facts(f, "payout")[0].endswith(
        "failed, plan 9940, fee 0, suspended 0, retained 0, paid 0 account closed"
    )
    p = found.payout("PO000120250108")
    assert (p.status, p.cause, p.plan_fen, p.paid_fen, p.short_fen) == (
        "gap",
        "account_problem",
        9_940,
        0,
        9_940,
    )


def test_a_bounced_payout_is_an_account_problem(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", state="bounced", reason="name mismatch")
    found = shop.run("2025-01-09 12:00")
    f = found.of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("gap", "account_problem", 0, 9_940)
    assert facts(f, "merchant") == []  # the merchant is active: the bank refused the money
    assert found.payout("PO000120250108").cause == "account_problem"


def test_a_frozen_payout_is_a_risk_hold(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", state="frozen")
    found = shop.run("2025-01-09 12:00")
    f = found.of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("gap", "risk_hold", 0, 9_940)
    assert f.expected_date == day("2025-01-08")
    p = found.payout("PO000120250108")
    assert (p.status, p.cause, p.paid_fen, p.short_fen) == ("gap", "risk_hold", 0, 9_940)


def test_a_suspended_amount_shorts_each_sale_by_its_share(shop: Shop) -> None:
    a = shop.sale("2025-01-07 15:00", 10_000)
    b = shop.sale("2025-01-07 16:00", 30_000)
    shop.cleared(a, on="2025-01-08")
    shop.cleared(b, on="2025-01-08")
    shop.payout("2025-01-08", suspend=4_000)  # plan 9940 + 29820 = 39760
    found = shop.run("2025-01-09 12:00")
    fa, fb = found.of(a), found.of(b)
    assert (fa.status, fa.cause, fb.status, fb.cause) == (
        "settled_short",
        "risk_hold",
        "settled_short",
        "risk_hold",
    )
    # 4000 x 9940 / 39760 = 1000; 4000 x 29820 / 39760 = 3000
    assert (fa.paid_fen, fa.short_fen, fb.paid_fen, fb.short_fen) == (8_940, 1_000, 26_820, 3_000)
    p = found.payout("PO000120250108")
    assert (p.status, p.cause, p.plan_fen, p.paid_fen, p.short_fen) == (
        "settled_short",
        "risk_hold",
        39_760,
        35_760,
        4_000,
    )


def test_a_retained_amount_is_a_risk_hold(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", retained=940)
    found = shop.run("2025-01-09 12:00")
    f = found.of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == (
        "settled_short",
        "risk_hold",
        9_000,
        940,
    )
    assert found.payout("PO000120250108").cause == "risk_hold"


def test_a_payout_charge_is_a_fee(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", sm="D0")
    shop.cleared(s, on="2025-01-07")
    shop.payout("2025-01-07", fee_total=30)
    found = shop.run("2025-01-08 12:00")
    f = found.of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("settled_short", "fee", 9_910, 30)
    assert f.expected_date == day("2025-01-07")
    assert "payout charge 30 fen (e.g. D0 surcharge)" in facts(f, "payout")
    p = found.payout("PO000120250107")
    assert (p.status, p.cause, p.short_fen) == ("settled_short", "fee", 30)


def test_a_hold_explains_a_short_payout_before_a_charge(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", fee_total=30, suspend=910)
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.short_fen) == ("settled_short", "risk_hold", 940)


def test_a_fee_one_fen_over_the_agreed_rate_is_rounding(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08", fee=61)
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("settled", "", 9_939, 0)


def test_a_fee_two_fen_over_the_agreed_rate_is_a_fee(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08", fee=62)
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("settled_short", "fee", 9_938, 2)
    assert facts(f, "merchant") == ["agreed fee 60 fen at rate 0.0060; charged 62"]


def test_the_debit_cap_limits_the_agreed_fee_on_debit_cards_only(shop: Shop) -> None:
    shop.merchant(M1, debit_cap=2_000)  # 20 yuan; 0.6 % of 5000 yuan is 30
    debit = shop.sale("2025-01-07 15:00", 500_000, ck="D")
    debit_over = shop.sale("2025-01-07 15:10", 500_000, ck="D")
    credit = shop.sale("2025-01-07 15:20", 500_000, ck="C")
    shop.cleared(debit, on="2025-01-08", fee=2_000)
    shop.cleared(debit_over, on="2025-01-08", fee=3_000)
    shop.cleared(credit, on="2025-01-08", fee=3_000)
    shop.payout("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    assert (found.of(debit).status, found.of(debit).paid_fen) == ("settled", 498_000)
    f = found.of(debit_over)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("settled_short", "fee", 497_000, 1_000)
    assert facts(f, "merchant") == ["agreed fee 2000 fen at rate 0.0060; charged 3000"]
    assert (found.of(credit).status, found.of(credit).paid_fen) == ("settled", 497_000)


def test_a_short_payout_nobody_explains_is_unknown(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", paid=9_000)
    found = shop.run("2025-01-09 12:00")
    f = found.of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("settled_short", "unknown", 9_000, 940)
    p = found.payout("PO000120250108")
    assert (p.status, p.cause, p.short_fen) == ("settled_short", "unknown", 940)


def test_payout_findings_settled_and_pending(shop: Shop) -> None:
    shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=10_000)
    shop.payout("2025-01-08")
    shop.payout("2025-01-09", plan=5_000, state="in_progress")
    found = shop.run("2025-01-09 12:00")
    paid, moving = found.payout("PO000120250108"), found.payout("PO000120250109")
    assert (paid.status, paid.cause, paid.plan_fen, paid.paid_fen, paid.short_fen) == (
        "settled",
        "",
        9_940,
        9_940,
        0,
    )
    assert (paid.mid, paid.expected_date) == (M1, day("2025-01-08"))
    assert (moving.status, moving.cause, moving.short_fen) == ("pending", "timing", 0)
    assert moving.expected_date == day("2025-01-09")


def test_money_missing_upstream_says_what_the_terminal_showed(shop: Shop) -> None:
    """Not network-caused: the terminal's own diagnostics around the sale say so, so support
    can rule the network out with evidence (issue 23)."""
    shop.merchant(M1, status="closed")
    shop.signal("2025-01-07 14:50", rssi=-85)
    s = shop.sale("2025-01-07 15:00")
    shop.heartbeat("2025-01-07 15:05", jrec=0)
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", state="failed", reason="account closed")
    f = shop.run("2025-01-09 12:00").of(s)
    assert f.cause == "account_problem"
    assert facts(f, "diag_event") == [
        "the terminal around the sale: link up, no outage within 15 minutes; signal LTE,"
        " RSSI -85 dBm, registered; 0 records unsent at the next heartbeat"
    ]


def test_a_payout_in_progress_past_the_banks_usual_time_is_a_bank_delay(shop: Shop) -> None:
    """In progress on its date and the next day: not due at the bank yet. Two days late: the
    acquirer paid it out and the bank has not credited it (issue 24: it used to say "not due
    yet, expected on the 8th" on the 21st)."""
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", state="in_progress")
    on_time = shop.run("2025-01-09 12:00")
    assert (on_time.of(s).status, on_time.of(s).cause) == ("pending", "timing")
    late = shop.run("2025-01-10 12:00")
    f = late.of(s)
    assert (f.status, f.cause, f.paid_fen, f.short_fen) == ("gap", "bank_delay", 0, 9_940)
    assert any("still in progress 1 day(s) past" in fact for fact in facts(f, "payout"))
    p = late.payout("PO000120250108")
    assert (p.status, p.cause) == ("gap", "bank_delay")
