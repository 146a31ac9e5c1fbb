"""When money is due, and what it means when it has not come (DESIGN §2.2 `timing`,
`file_missing`): the day cut, DE15 dates, T1 over the working-day calendar, D1, the D0
window, the acquirer's policy, and the acquirer's files not imported yet.

The calendar is the real one (chinese-calendar): 2025-01-01 is New Year's Day, 2025-01-26 a
Sunday worked to make up for the Spring Festival.
"""

from __future__ import annotations

from tests.correlate.builder import M1, M2, Shop, day, facts


def test_not_due_yet_is_pending_timing_with_the_policy_as_evidence(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    f = shop.run("2025-01-07 20:00").of(s)
    assert (f.status, f.cause, f.data) == ("pending", "timing", "complete")
    assert (f.amount_fen, f.paid_fen, f.short_fen) == (10_000, 0, 0)
    assert f.expected_date == day("2025-01-08")
    assert facts(f, "policy") == ["traded on 2025-01-07; T1: next working day → 2025-01-08"]
    assert facts(f, "calendar") == []


def test_due_today_is_no_longer_pending(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.detail_file("2025-01-08")
    f = shop.run("2025-01-08 00:00").of(s)
    assert f.status == "gap" and f.cause != "timing"


def test_a_sale_before_the_23_00_day_cut_counts_for_its_own_day(shop: Shop) -> None:
    s = shop.sale("2025-01-07 22:59:59")
    f = shop.run("2025-01-07 23:30").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-08"))


def test_a_sale_at_the_23_00_day_cut_counts_for_the_next_day(shop: Shop) -> None:
    s = shop.sale("2025-01-07 23:00:00")
    f = shop.run("2025-01-07 23:30").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-09"))
    assert facts(f, "policy") == [
        "traded on 2025-01-07, after the 23:00 day cut: counts for 2025-01-08;"
        " T1: next working day → 2025-01-09"
    ]


def test_an_acquirers_own_day_cut_applies_to_its_merchants_only(shop: Shop) -> None:
    shop.policy('[acquirers.ACQ2]\nday_cut = "22:00"\n')
    shop.merchant(M2, acquirer="ACQ2")
    at_acq1 = shop.sale("2025-01-07 22:30")
    at_acq2 = shop.sale("2025-01-07 22:30", mid=M2, tid="20000001", dev="DEV00002")
    found = shop.run("2025-01-07 23:30")
    assert found.of(at_acq1).expected_date == day("2025-01-08")
    f = found.of(at_acq2)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-09"))
    assert "after the 22:00 day cut" in facts(f, "policy")[0]


def test_a_de15_settle_date_wins_over_the_day_cut(shop: Shop) -> None:
    s = shop.sale("2025-01-07 23:30", sd="0107")
    f = shop.run("2025-01-07 23:45").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-08"))
    assert facts(f, "policy") == ["DE15 settle date 2025-01-07; T1: next working day → 2025-01-08"]


def test_a_de15_date_of_the_old_year_on_new_years_night(shop: Shop) -> None:
    """DE15 carries no year: the date nearest the transaction is meant."""
    s = shop.sale("2025-01-01 00:10", sd="1231")
    f = shop.run("2025-01-01 12:00").of(s)
    assert (f.status, f.expected_date) == ("pending", day("2025-01-02"))
    assert facts(f, "policy")[0].startswith("DE15 settle date 2024-12-31;")


def test_t1_on_a_friday_pays_on_monday_and_the_calendar_says_why(shop: Shop) -> None:
    s = shop.sale("2025-01-10 15:00")
    f = shop.run("2025-01-11 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-13"))
    assert facts(f, "calendar") == ["2 day(s) off between trade and payout (chinese-calendar)"]


def test_t1_on_a_thursday_pays_on_friday_with_no_day_off(shop: Shop) -> None:
    s = shop.sale("2025-01-09 15:00")
    f = shop.run("2025-01-09 20:00").of(s)
    assert (f.expected_date, facts(f, "calendar")) == (day("2025-01-10"), [])


def test_t1_skips_a_public_holiday(shop: Shop) -> None:
    s = shop.sale("2024-12-31 15:00")
    f = shop.run("2025-01-01 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-02"))
    assert facts(f, "calendar") == ["1 day(s) off between trade and payout (chinese-calendar)"]


def test_t1_the_day_before_the_holiday_eve_pays_on_the_eve(shop: Shop) -> None:
    s = shop.sale("2024-12-30 15:00")
    f = shop.run("2024-12-30 20:00").of(s)
    assert f.expected_date == day("2024-12-31")


def test_t1_pays_on_a_weekend_make_up_working_day(shop: Shop) -> None:
    """Friday 2025-01-24: Saturday is off, Sunday 01-26 is worked for the Spring Festival."""
    s = shop.sale("2025-01-24 15:00")
    f = shop.run("2025-01-25 12:00").of(s)
    assert (f.status, f.expected_date) == ("pending", day("2025-01-26"))
    assert facts(f, "calendar") == ["1 day(s) off between trade and payout (chinese-calendar)"]


def test_d1_pays_the_next_calendar_day_even_on_a_weekend(shop: Shop) -> None:
    s = shop.sale("2025-01-10 15:00", sm="D1")
    f = shop.run("2025-01-10 20:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-11"))
    assert facts(f, "policy") == ["traded on 2025-01-10; D1: next calendar day → 2025-01-11"]


def test_the_merchants_settle_type_applies_when_the_receipt_has_none(shop: Shop) -> None:
    shop.merchant(M1, settle_type="D1")
    s = shop.sale("2025-01-10 15:00")
    assert shop.run("2025-01-10 20:00").of(s).expected_date == day("2025-01-11")


def test_d0_inside_the_window_pays_the_same_day(shop: Shop) -> None:
    s = shop.sale("2025-01-07 21:59:59", sm="D0")
    f = shop.run("2025-01-07 22:30").of(s)
    assert (f.status, f.cause, f.expected_date) == ("gap", "file_missing", day("2025-01-07"))
    assert facts(f, "policy")[0].endswith("D0 inside the window: same day → 2025-01-07")


def test_d0_at_the_end_of_the_window_pays_the_next_day(shop: Shop) -> None:
    s = shop.sale("2025-01-07 22:00:00", sm="D0")
    f = shop.run("2025-01-07 22:30").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-08"))
    assert facts(f, "policy")[0].endswith("D0 outside the window: next day → 2025-01-08")


def test_d0_after_the_day_cut_pays_the_next_calendar_day(shop: Shop) -> None:
    s = shop.sale("2025-01-07 23:30", sm="D0")
    f = shop.run("2025-01-07 23:45").of(s)
    assert f.expected_date == day("2025-01-08")


def test_a_payout_in_progress_is_pending_timing(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", state="in_progress")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-08"))
    assert (f.paid_fen, f.short_fen) == (0, 0)
    assert "in_progress" in facts(f, "payout")[0]


def test_due_with_no_detail_file_imported_is_file_missing(any_shop: Shop) -> None:
    s = any_shop.sale("2025-01-07 15:00")
    f = any_shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.data) == ("gap", "file_missing", "complete")
    assert (f.expected_date, f.paid_fen) == (day("2025-01-08"), 0)
    assert facts(f, "settlement_file") == ["no detail file imported for ACQ1 2025-01-08"]


def test_due_with_the_detail_file_imported_is_not_file_missing(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.detail_file("2025-01-08")  # imported, and the sale is not in it
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause) == ("gap", "unknown")
    assert facts(f, "settlement_file") == ["detail file for ACQ1 2025-01-08 imported; no row"]


def test_a_detail_file_of_another_day_does_not_count(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.detail_file("2025-01-07")
    shop.detail_file("2025-01-09")
    assert shop.run("2025-01-09 12:00").of(s).cause == "file_missing"


def test_empty_detail_files_of_two_days_count_for_both_days(shop: Shop) -> None:
    first = shop.sale("2025-01-07 15:00")
    second = shop.sale("2025-01-08 15:00")
    shop.detail_file("2025-01-08")
    shop.detail_file("2025-01-09")
    found = shop.run("2025-01-10 12:00")
    assert found.of(first).cause == "unknown"
    assert found.of(second).cause == "unknown"


def test_a_cleared_row_with_no_payout_file_imported_is_file_missing(shop: Shop) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.payout_id) == ("gap", "file_missing", "PO000120250108")
    assert (f.expected_date, f.paid_fen) == (day("2025-01-08"), 0)
    assert facts(f, "settlement_file") == ["no payout file imported for ACQ1 2025-01-08"]
    assert len(facts(f, "settlement_row")) == 1


def test_a_cleared_row_missing_from_an_imported_payout_file_is_not_file_missing(
    shop: Shop,
) -> None:
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-08")
    shop.payout("2025-01-08", M2, plan=5_000)  # the file has another merchant's payout only
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause) == ("gap", "unknown")
    assert facts(f, "payout") == ["payout PO000120250108 is in no imported payout file"]


def test_a_cleared_row_settling_after_as_of_is_pending(shop: Shop) -> None:
    """The acquirer moved the money to a later date than the policy's: its row says when."""
    s = shop.sale("2025-01-07 15:00")
    shop.cleared(s, on="2025-01-10")
    f = shop.run("2025-01-09 12:00").of(s)
    assert (f.status, f.cause, f.expected_date) == ("pending", "timing", day("2025-01-10"))
