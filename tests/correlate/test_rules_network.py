"""Network-caused findings (DESIGN §2.2), one rule per test on a hand-built store.

`network_reversed`, `reversal_pending`, `reversal_failed`, `duplicate_charge_risk` and
`late_upload`: what the receipt's state says, with the device timeline (outages within 15
minutes, the last signal reading) as evidence.
"""

from __future__ import annotations

from daozhang.correlate.finding import NETWORK_CAUSES
from daozhang.correlate.render import to_dict

from tests.correlate.builder import Shop, day, facts, sources


def test_network_reversed_is_a_gap_with_the_outage_as_evidence(any_shop: Shop) -> None:
    s = any_shop.sale("2025-01-07 15:00", st="no_response")
    any_shop.signal("2025-01-07 14:50", rssi=-109)
    any_shop.outage("2025-01-07 14:59", "2025-01-07 15:04", stage="tls", why="handshake timeout")
    any_shop.later(s, "2025-01-07 15:05", st="reversed", rv="98")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.data) == ("gap", "network_reversed", "complete")
    assert (f.amount_fen, f.paid_fen, f.expected_date) == (10_000, 0, day("2025-01-08"))
    assert sources(f)[0] == "receipt" and "reversed" in facts(f, "receipt")[0]
    outage, signal = facts(f, "diag_event")
    assert outage == (
        "link down 2025-01-07 14:59:00 .. 2025-01-07 15:04:00 (5 min 0 s) at stage tls"
        " (handshake timeout): the sale fell inside it"
    )
    assert (
        signal == "signal at 2025-01-07 14:50:00, before the sale: LTE, RSSI -109 dBm, registered"
    )
    assert f.confidence == 0.95  # inside an outage the device journaled


def test_a_reversal_without_a_reason_code_is_network_reversed(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", st="reversed")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause) == ("gap", "network_reversed")


def test_an_outage_15_minutes_before_the_sale_is_evidence_and_one_more_second_is_not(
    shop: Shop,
) -> None:
    near = shop.sale("2025-01-07 15:00", st="reversed", rv="98", dev="DEV00001", tid="10000001")
    far = shop.sale("2025-01-07 15:00", st="reversed", rv="98", dev="DEV00002", tid="10000002")
    shop.outage("2025-01-07 14:40", "2025-01-07 14:45:00", dev="DEV00001")
    shop.outage("2025-01-07 14:40", "2025-01-07 14:44:59", dev="DEV00002")
    found = shop.run("2025-01-09 12:00")
    f, g = found.of(near), found.of(far)
    assert (f.cause, g.cause) == ("network_reversed", "network_reversed")
    assert len(facts(f, "diag_event")) == 1 and f.confidence == 0.9
    # No outage near: still the receipt's word, with less confidence.
    assert facts(g, "diag_event") == [] and g.confidence == 0.8


def test_a_reversal_for_a_terminal_fault_is_not_network_caused(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", st="reversed", rv="96")
    f = shop.run("2025-01-09 12:00").of(s)
    # rv 96: the terminal failed after the approval (DESIGN §2.3 `terminal_fault`).
    assert (f.status, f.cause, f.expected_date) == ("gap", "terminal_fault", day("2025-01-08"))
    assert f.cause not in NETWORK_CAUSES


def test_no_response_is_reversal_pending(any_shop: Shop) -> None:
    s = any_shop.sale("2025-01-07 15:00", st="no_response")
    any_shop.outage("2025-01-07 14:58", None, stage="dns", why="no answer")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.data) == ("gap", "reversal_pending", "complete")
    assert (f.amount_fen, f.paid_fen, f.rrn) == (10_000, 0, "")
    # An outage still open when the device was last heard is evidence too.
    assert facts(f, "diag_event") == [
        "link down 2025-01-07 14:58:00 .. still down (open) at stage dns (no answer):"
        " the sale fell inside it"
    ]


def test_reversal_pending_state_is_reversal_pending(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", st="reversal_pending")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("gap", "reversal_pending", day("2025-01-08"))


def test_a_no_response_sale_the_acquirer_settled_is_settled_with_the_risk_in_evidence(
    shop: Shop,
) -> None:
    """README known limit: §2.2 has no cause for settled money; the trouble stays visible."""
    s = shop.sale("2025-01-07 15:00", st="no_response")
    shop.cleared(s, on="2025-01-08")  # matched by natural key and amount: no RRN on the receipt
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.also) == ("settled", "", ["reversal_pending"])
    assert (f.paid_fen, f.short_fen, f.expected_date) == (9_940, 0, day("2025-01-08"))
    assert "but the acquirer cleared it anyway" in facts(f, "settlement_row")


def test_reversal_failed(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", st="reversal_failed")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.data) == ("gap", "reversal_failed", "complete")
    assert (f.amount_fen, f.expected_date) == (10_000, day("2025-01-08"))


def test_a_reswipe_of_the_same_card_and_amount_within_15_minutes_is_a_duplicate_charge_risk(
    shop: Shop,
) -> None:
    first = shop.sale("2025-01-07 15:00", 8_800, st="no_response")
    shop.sale("2025-01-07 15:15:00", 8_800)
    f = shop.run("2025-01-09 12:00").of(first)
    assert (f.status, f.cause) == ("gap", "duplicate_charge_risk")
    assert facts(f, "receipt")[1] == "same card and amount approved again at 2025-01-07 15:15:00"


def test_a_reswipe_one_second_after_15_minutes_is_not(shop: Shop) -> None:
    first = shop.sale("2025-01-07 15:00", 8_800, st="no_response")
    shop.sale("2025-01-07 15:15:01", 8_800)
    assert shop.run("2025-01-09 12:00").of(first).cause == "reversal_pending"


def test_a_reswipe_with_another_amount_or_card_is_not(shop: Shop) -> None:
    first = shop.sale("2025-01-07 15:00", 8_800, st="no_response")
    shop.sale("2025-01-07 15:05", 8_801)
    shop.sale("2025-01-07 15:06", 8_800, pan="622848******9999")
    assert shop.run("2025-01-09 12:00").of(first).cause == "reversal_pending"


def test_an_offline_approval_never_uploaded_is_a_late_upload_gap_once_due(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", st="offline_pending")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("gap", "late_upload", day("2025-01-08"))
    assert "approved offline; not uploaded to the acquirer" in facts(f, "receipt")


def test_an_offline_approval_not_due_yet_is_pending_timing(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00", st="offline_pending")
    f = shop.run("2025-01-07 20:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-08"))


def test_an_offline_approval_sent_after_the_day_cut_is_pending_late_upload(shop: Shop) -> None:
    s = shop.sale("2025-01-07 22:00", st="offline_pending")
    shop.outage("2025-01-07 21:55", "2025-01-07 23:00")
    shop.later(s, "2025-01-07 23:00:00", st="offline_sent", rrn=shop.new_rrn())
    f = shop.run("2025-01-07 23:30").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "late_upload", day("2025-01-09"))
    (sent,) = [x for x in facts(f, "receipt") if x.startswith("sent to the acquirer")]
    assert sent.startswith("sent to the acquirer at 2025-01-07 23:00:00: traded on 2025-01-07,")
    assert "after the 23:00 day cut" in sent and len(facts(f, "diag_event")) == 1
    shown = to_dict(f)
    assert shown["network_caused"] is True and "2025-01-09" in shown["explain"]["en"]


def test_an_offline_approval_sent_before_the_day_cut_is_on_time(shop: Shop) -> None:
    s = shop.sale("2025-01-07 22:00", st="offline_pending")
    shop.later(s, "2025-01-07 22:59:59", st="offline_sent", rrn=shop.new_rrn())
    f = shop.run("2025-01-07 23:30").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-08"))


def test_a_late_upload_past_its_later_date_with_no_row_is_a_gap(shop: Shop) -> None:
    s = shop.sale("2025-01-07 22:00", st="offline_pending")
    shop.later(s, "2025-01-07 23:10", st="offline_sent", rrn=shop.new_rrn())
    f = shop.run("2025-01-10 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("gap", "late_upload", day("2025-01-09"))


def test_a_late_upload_the_acquirer_cleared_is_settled(shop: Shop) -> None:
    s = shop.sale("2025-01-07 22:00", st="offline_pending")
    shop.later(s, "2025-01-07 23:10", st="offline_sent", rrn=shop.new_rrn())
    shop.cleared(s, on="2025-01-09")
    shop.payout("2025-01-09")
    f = shop.run("2025-01-10 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("settled", "", day("2025-01-09"))
    assert (f.paid_fen, f.short_fen) == (9_940, 0)
