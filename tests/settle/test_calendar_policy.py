"""Working-day calendar (chinese-calendar + override file) and the settlement timing policy."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from daozhang.settle.calendar import CalendarError, WorkingCalendar
from daozhang.settle.policy import Policies, Policy, de15_date, due
from daozhang.units import BEIJING


def bj(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=BEIJING).timestamp())


CAL = WorkingCalendar()
T1 = Policy()


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # 2024 Spring Festival: 10-17 Feb off; Sunday 4 Feb and Sunday 18 Feb are make-up days.
        ("2024-02-03 12:00", "2024-02-04"),  # Saturday -> make-up Sunday
        ("2024-02-09 15:00", "2024-02-18"),  # Friday before the holiday -> make-up Sunday
        ("2024-02-09 23:30", "2024-02-18"),  # after the cut: business day 10 Feb, a holiday
        ("2024-02-18 10:00", "2024-02-19"),
        # 2025 Spring Festival: 28 Jan - 4 Feb off; Sunday 26 Jan, Saturday 8 Feb make-up days.
        ("2025-01-25 10:00", "2025-01-26"),
        ("2025-01-27 22:59", "2025-02-05"),  # Monday before the cut: next working day 5 Feb
        ("2025-01-27 23:00", "2025-02-05"),
        ("2025-02-07 09:00", "2025-02-08"),  # Friday -> make-up Saturday
        ("2025-01-06 22:59", "2025-01-07"),  # an ordinary Monday
        ("2025-01-10 23:10", "2025-01-13"),  # Friday after the cut -> Saturday -> Monday
    ],
)
def test_t1_over_spring_festival(when: str, expected: str) -> None:
    assert due(bj(when), "T1", T1, CAL).expected == date.fromisoformat(expected)


def test_d1_d0_and_day_cut_from_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[default]\nday_cut = "23:00"\nd0_window = ["08:00", "20:00"]\n'
        '[acquirers.ACQ2]\nday_cut = "22:00"\nsettle_type = "D1"\n'
    )
    policies = Policies.load(path)
    acq2 = policies.for_acquirer("ACQ2")
    other = policies.for_acquirer("ACQ9")
    assert (acq2.day_cut.hour, acq2.settle_type, other.day_cut.hour) == (22, "D1", 23)
    assert due(bj("2025-01-27 22:30"), "D1", acq2, CAL).expected == date(2025, 1, 29)
    assert due(bj("2025-01-27 22:30"), "D1", other, CAL).expected == date(2025, 1, 28)
    assert due(bj("2025-01-28 10:00"), "D0", other, CAL).expected == date(2025, 1, 28)
    assert due(bj("2025-01-28 20:30"), "D0", other, CAL).expected == date(2025, 1, 29)
    d = due(bj("2025-01-27 23:30"), "T1", other, CAL)
    assert "day cut" in d.rule and "chinese-calendar" in d.rule and "2025-02-05" in d.rule


def test_bad_policy_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[default]\nday_cut = "25:99"\n')
    with pytest.raises(Exception, match="day_cut: expected HH:MM"):
        Policies.load(path)
    path.write_text("[default]\ncutoff = 1\n")
    with pytest.raises(Exception, match="unknown keys: cutoff"):
        Policies.load(path)


def test_de15_date_wins_and_wraps_the_year() -> None:
    assert de15_date("1231", bj("2025-01-01 00:10")) == date(2024, 12, 31)
    # The host counted it for Monday already (its cut): T1 pays Tuesday.
    d = due(bj("2025-01-05 23:50"), "T1", T1, CAL, sd="0106")
    assert (d.business_day, d.expected) == (date(2025, 1, 6), date(2025, 1, 7))
    assert "DE15" in d.rule


def test_unknown_year_needs_the_override_file(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="2031 are not known"):
        CAL.next_working_day(date(2031, 1, 1))
    path = tmp_path / "cal.toml"
    path.write_text('years = [2031]\nholidays = ["2031-01-01"]\nworkdays = ["2031-01-04"]\n')
    cal = WorkingCalendar.load(path)
    assert not cal.is_working_day(date(2031, 1, 1))
    assert cal.is_working_day(date(2031, 1, 4))  # a Saturday make-up day
    assert cal.next_working_day(date(2030, 12, 31)) == date(2031, 1, 2)
    assert "override" in cal.source(date(2031, 1, 2))
    # The package still answers for the years it knows.
    assert (
        cal.is_working_day(date(2025, 2, 8)) and cal.source(date(2025, 2, 8)) == "chinese-calendar"
    )
