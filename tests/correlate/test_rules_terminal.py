"""What the terminal did to a transaction, apart from the network (DESIGN §2.2): declines,
voids and refunds (`not_expected`), pre-authorisations (`preauth_open`), and how a receipt
finds its acquirer row (RRN, else natural key and amount)."""

from __future__ import annotations

from daozhang.correlate.render import explain

from tests.correlate.builder import M1, M2, Shop, day, facts


def test_a_declined_sale_is_not_expected(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", st="declined", rc="51")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.data, f.expected_date) == ("not_expected", "", "complete", None)
    assert (f.amount_fen, f.paid_fen, f.short_fen) == (10_000, 0, 0)
    assert "declined" in facts(f, "receipt")[0]


def test_a_sale_in_voided_state_is_not_expected(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.later(s, "2025-01-07 15:10", st="voided")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause) == ("not_expected", "")


def test_a_void_and_a_refund_are_not_expected(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    void = shop.sale("2025-01-07 15:10", typ="void", otrc=s["trc"], orrn=s["rrn"])
    refund = shop.sale("2025-01-07 16:00", 3_000, typ="refund", orrn=shop.new_rrn())
    found = shop.run("2025-01-09 12:00")
    assert found.of(void).status == "not_expected"
    assert found.of(refund).status == "not_expected"


def test_a_sale_closed_by_an_approved_void_receipt_is_not_expected(shop: Shop) -> None:
    """The terminal reported the void as its own transaction and never sent the sale again:
    the void's `otrc`/`orrn` close the sale (correlate README, "Matching")."""
    s = shop.sale("2025-01-07 15:00")
    shop.sale("2025-01-07 15:10", typ="void", otrc=s["trc"], orrn=s["rrn"])
    shop.cleared(s, on="2025-01-08", flag="B")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause) == ("not_expected", "")
    assert any("voided" in x for x in facts(f, "receipt"))


def test_a_declined_void_does_not_close_its_sale(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.sale("2025-01-07 15:10", typ="void", st="declined", otrc=s["trc"], orrn=s["rrn"])
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.paid_fen) == ("settled", 9_940)


def test_an_open_preauthorisation_may_still_be_completed_until_it_lapses(shop: Shop) -> None:
    p = shop.sale("2025-01-07 15:00", 50_000, typ="preauth")
    f = shop.run("2025-01-09 12:00").of(p)  # past T1, within the policy's 30 days
    assert (f.status, f.cause) == ("pending", "preauth_open")
    assert (f.amount_fen, f.paid_fen, f.expected_date) == (50_000, 0, day("2025-02-06"))
    assert facts(f, "policy") == [
        "pre-authorised on 2025-01-07; open pre-authorisations expire after 30 days → 2025-02-06"
    ]
    assert "2025年2月6日前完成或撤销" in explain(f)["zh"]


def test_an_open_preauthorisation_past_the_policys_days_has_lapsed(shop: Shop) -> None:
    p = shop.sale("2025-01-07 15:00", 50_000, typ="preauth")
    f = shop.run("2025-02-10 12:00").of(p)
    assert (f.status, f.cause, f.data) == ("gap", "preauth_open", "complete")
    assert f.expected_date == day("2025-02-06")
    assert "已于2025年2月6日过期失效" in explain(f)["zh"]
    assert "lapsed on 2025-02-06" in explain(f)["en"]


def test_the_policy_sets_how_long_a_preauthorisation_stays_open(shop: Shop) -> None:
    shop.policy("[default]\npreauth_days = 3\n")
    p = shop.sale("2025-01-07 15:00", 50_000, typ="preauth")
    assert shop.run("2025-01-09 12:00").of(p).status == "pending"
    assert shop.run("2025-01-10 12:00").of(p).status == "gap"


def test_a_preauthorisation_completed_on_the_terminal_is_not_expected(shop: Shop) -> None:
    p = shop.sale("2025-01-07 15:00", 50_000, typ="preauth")
    done = shop.sale("2025-01-08 10:00", 48_000, typ="preauth_done", otrc=p["trc"])
    shop.cleared(done, on="2025-01-09", orrn=p["rrn"])
    shop.payout("2025-01-09")
    found = shop.run("2025-01-10 12:00")
    assert found.of(p).status == "not_expected"
    f = found.of(done)
    assert (f.status, f.cause, f.expected_date) == ("settled", "", day("2025-01-09"))
    assert (f.amount_fen, f.paid_fen) == (48_000, 48_000 - 288)


def test_a_preauthorisation_completed_only_in_the_acquirer_file_is_not_expected(
    shop: Shop,
) -> None:
    """The completion's receipt never reached the host, the acquirer's row names the original."""
    p = shop.sale("2025-01-07 15:00", 50_000, typ="preauth")
    shop.cleared(
        on="2025-01-09", at="2025-01-08 10:00", amt=48_000, typ="preauth_done", orrn=p["rrn"]
    )
    shop.payout("2025-01-09")
    found = shop.run("2025-01-10 12:00")
    assert found.of(p).status == "not_expected"


def test_a_receipt_without_rrn_finds_its_row_by_natural_key_and_amount(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", 2_500, ch="qr", rrn="")
    shop.cleared(s, on="2025-01-08", rrn="QR0000000001")
    shop.payout("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    f = found.of(s)
    assert (f.status, f.rrn, f.paid_fen) == ("settled", "QR0000000001", 2_500 - 15)
    assert len(found.transactions()) == 1


def test_a_row_with_the_same_key_and_another_amount_is_not_the_receipts(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", 2_500, rrn="")
    row = shop.cleared(s, on="2025-01-08", amt=2_600)
    shop.payout("2025-01-08")
    shop.heartbeat("2025-01-09 11:00")  # the device is healthy: the row is `no_receipt`
    found = shop.run("2025-01-09 12:00")
    (f,) = [g for g in found.transactions() if g.receipt is not None]
    assert (f.status, f.cause, f.row) == ("gap", "unknown", None)
    (g,) = [g for g in found.transactions() if g.receipt is None]
    assert (g.rrn, g.amount_fen, g.data, g.status) == (row["rrn"], 2_600, "no_receipt", "settled")


def test_an_rrn_match_needs_the_same_merchant(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", rrn="501000000777")
    shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=10_000, mid=M2, rrn="501000000777")
    shop.payout("2025-01-08", M2)
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.mid, f.status, f.row) == (M1, "gap", None)
