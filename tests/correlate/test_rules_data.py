"""The `data` value (DESIGN §2.2, and `refused` from the correlate README): what became of the
receipt record of a transaction the acquirer has.

`complete` when the collector stored the receipt; for an acquirer row with no receipt:
`device_data_loss` when the device declared the seqs around its time lost, `still_buffered`
when the device went silent within an hour of it and stayed silent for an hour, `refused`
when the collector refused the receipt (quarantine), else `no_receipt`.
"""

from __future__ import annotations

from tests.correlate.builder import M1, Shop, day, facts


def test_a_stored_receipt_is_complete_whatever_its_money(shop: Shop) -> None:
    paid = shop.sale("2025-01-07 15:00")
    unpaid = shop.sale("2025-01-07 15:10", st="no_response")
    shop.cleared(paid, on="2025-01-08")
    shop.payout("2025-01-08")
    found = shop.run("2025-01-09 12:00")
    assert (found.of(paid).status, found.of(paid).data) == ("settled", "complete")
    assert (found.of(unpaid).status, found.of(unpaid).data) == ("gap", "complete")


def test_a_row_the_healthy_device_never_reported_is_no_receipt(any_shop: Shop) -> None:
    any_shop.sale("2025-01-07 14:00")  # the device reports this terminal
    row = any_shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=5_000)
    any_shop.payout("2025-01-08")
    any_shop.heartbeat("2025-01-07 18:00")
    f = any_shop.run("2025-01-09 12:00").of(row)
    assert (f.status, f.cause, f.data) == ("settled", "", "no_receipt")
    assert (f.dev, f.rrn, f.expected_date) == ("DEV00001", row["rrn"], day("2025-01-08"))
    assert (f.amount_fen, f.paid_fen, f.short_fen) == (5_000, 4_970, 0)
    assert facts(f, "heartbeat") == ["device last heard at 2025-01-07 18:00:00: not silent since"]
    assert len(facts(f, "settlement_row")) == 1 and f.receipt is None


def test_a_row_for_a_terminal_no_device_serves_is_no_receipt_with_less_confidence(
    shop: Shop,
) -> None:
    row = shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=5_000, tid="99999999")
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(row)
    assert (f.status, f.data, f.dev, f.confidence) == ("settled", "no_receipt", "", 0.6)
    assert facts(f, "receipt") == [f"no device is known for terminal {M1}/99999999"]


def test_a_row_inside_a_declared_loss_is_device_data_loss(any_shop: Shop) -> None:
    any_shop.sale("2025-01-07 14:50")
    any_shop.lose(2)
    any_shop.sale("2025-01-07 15:10")
    at_end = any_shop.cleared(on="2025-01-08", at="2025-01-07 15:10:00", amt=5_000)
    after = any_shop.cleared(on="2025-01-08", at="2025-01-07 15:10:01", amt=6_000)
    any_shop.payout("2025-01-08")
    any_shop.heartbeat("2025-01-07 18:00")
    found = any_shop.run("2025-01-09 12:00")
    f = found.of(at_end)
    assert (f.status, f.data, f.dev, f.paid_fen) == (
        "settled",
        "device_data_loss",
        "DEV00001",
        4_970,
    )
    assert facts(f, "diag_event") == [
        "device declared seqs 2..3 lost (2025-01-07 14:50:00 .. 2025-01-07 15:10:00)"
    ]
    # One second past the next record the device kept: not in the lost range.
    assert found.of(after).data == "no_receipt"


def test_a_row_while_the_device_went_silent_is_still_buffered(shop: Shop) -> None:
    shop.sale("2025-01-07 14:30")
    shop.heartbeat("2025-01-07 15:59:59", jrec=4)  # last heard within the hour after 15:00
    row = shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=5_000)
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(row)
    assert (f.status, f.data, f.dev, f.paid_fen) == ("settled", "still_buffered", "DEV00001", 4_970)
    assert facts(f, "heartbeat") == [
        "device last heard at 2025-01-07 15:59:59, 4 records unsent then; silent since"
    ]


def test_a_device_heard_an_hour_after_the_row_is_not_still_buffered(shop: Shop) -> None:
    shop.sale("2025-01-07 14:30")
    shop.heartbeat("2025-01-07 16:00:00", jrec=4)
    row = shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=5_000)
    shop.payout("2025-01-08")
    assert shop.run("2025-01-09 12:00").of(row).data == "no_receipt"


def test_still_buffered_needs_an_hour_of_silence_as_of_the_run(shop: Shop) -> None:
    """A D0 row is in the acquirer's file the same day: the hour of silence is the boundary."""
    shop.sale("2025-01-07 14:30")
    shop.heartbeat("2025-01-07 15:30")
    row = shop.cleared(on="2025-01-07", at="2025-01-07 15:00", amt=5_000, sm="D0")
    shop.payout("2025-01-07")
    assert shop.run("2025-01-07 16:30:00").of(row).data == "no_receipt"
    assert shop.run("2025-01-07 16:30:01").of(row).data == "still_buffered"


def test_a_receipt_the_collector_refused_from_an_authentic_upload_is_refused(
    any_shop: Shop,
) -> None:
    bad = any_shop.sale("2025-01-07 15:00", cur="rmb")  # malformed: the collector refuses it
    any_shop.cleared(bad, on="2025-01-08")
    any_shop.payout("2025-01-08")
    any_shop.heartbeat("2025-01-07 18:00")
    found = any_shop.run("2025-01-09 12:00")
    f = found.of(bad)
    assert (f.status, f.data, f.dev, f.receipt) == ("settled", "refused", "DEV00001", None)
    assert (f.amount_fen, f.paid_fen, f.expected_date) == (10_000, 9_940, day("2025-01-08"))
    (fact,) = facts(f, "quarantine")
    assert fact.startswith("the collector refused this receipt from device DEV00001 (")
    assert "record_schema" in fact and "the device deleted it" in fact


def test_a_receipt_inside_an_upload_the_collector_refused_is_refused(any_shop: Shop) -> None:
    any_shop.provision(b"k" * 32)
    s = any_shop.sale("2025-01-07 15:00")
    any_shop.upload(key=b"x" * 32)  # signed with another key: the whole upload is refused
    any_shop.cleared(s, on="2025-01-08")
    any_shop.payout("2025-01-08")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.data, f.paid_fen) == ("settled", "refused", 9_940)
    (fact,) = facts(f, "quarantine")
    assert "mac" in fact and "still holds it" in fact


def test_still_buffered_is_judged_by_the_terminal_clock_not_by_arrival(any_shop: Shop) -> None:
    """The same heartbeats reaching the host two weeks late say the same: the device went
    silent at 15:10 holding records, whatever the host's receive time says."""
    any_shop.sale("2025-01-07 14:30")
    any_shop.heartbeat("2025-01-07 15:10", jrec=4, received="2025-01-21 09:00")
    row = any_shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=5_000)
    any_shop.payout("2025-01-08")
    f = any_shop.run("2025-01-09 12:00").of(row)
    assert f.data == "still_buffered"
    assert facts(f, "heartbeat") == [
        "device last heard at 2025-01-07 15:10:00, 4 records unsent then; silent since"
    ]


def test_a_heartbeat_after_the_as_of_time_is_not_yet_evidence(shop: Shop) -> None:
    """As of 01-07 17:00 the device was silent since 15:10; a heartbeat the terminal sent at
    20:00 (stored now) does not change what was true at 17:00."""
    shop.sale("2025-01-07 14:30")
    shop.heartbeat("2025-01-07 15:10", jrec=4)
    shop.heartbeat("2025-01-07 20:00", jrec=0)
    row = shop.cleared(on="2025-01-07", at="2025-01-07 15:00", amt=5_000, sm="D0")
    shop.payout("2025-01-07")
    assert shop.run("2025-01-07 17:00").of(row).data == "still_buffered"
    assert shop.run("2025-01-07 21:00").of(row).data == "no_receipt"


def test_a_heartbeat_without_a_clock_is_placed_from_its_uptime(shop: Shop) -> None:
    """t = 0 (the terminal did not know the time yet): placed from the clock reference its
    records of the same boot gave (the sale at 14:30 was at uptime 1 s) plus the heartbeat's
    uptime."""
    shop.sale("2025-01-07 14:30")
    shop.heartbeat(None, jrec=2, up_s=40 * 60 + 1, received="2025-01-07 18:00")  # 15:10
    row = shop.cleared(on="2025-01-08", at="2025-01-07 15:00", amt=5_000)
    shop.payout("2025-01-08")
    f = shop.run("2025-01-09 12:00").of(row)
    assert f.data == "still_buffered"
    assert facts(f, "heartbeat") == [
        "device last heard at 2025-01-07 15:10:00 (time placed from its uptime), 2 records"
        " unsent then; silent since"
    ]
