"""Working days in mainland China: public holidays and make-up working days.

The `chinese-calendar` package knows the State Council's arrangement for the years it was
released with; a local override file (TOML) adds years it does not know yet, or corrects a day:

    years = [2027]                       # years this file describes completely
    holidays = ["2027-01-01", ...]       # days off that are not weekends
    workdays = ["2027-02-07", ...]       # make-up working days on weekends (调休)

A year neither source knows is an error, never a guess: a wrong working day moves every T1
expected date after it.
"""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from pathlib import Path

from daozhang.errors import InputError


class CalendarError(InputError):
    """The calendar cannot say whether a day is a working day."""


class WorkingCalendar:
    def __init__(
        self,
        holidays: set[date] | None = None,
        workdays: set[date] | None = None,
        years: set[int] | None = None,
        override_name: str = "",
    ) -> None:
        self.holidays = holidays or set()
        self.workdays = workdays or set()
        self.years = years or set()
        self.override_name = override_name
        self._cache: dict[date, bool] = {}

    @classmethod
    def load(cls, override: Path | None = None) -> WorkingCalendar:
        if override is None:
            return cls()
        try:
            spec = tomllib.loads(override.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CalendarError(f"{override}: cannot read the calendar override: {exc}") from None
        try:
            holidays = {date.fromisoformat(str(d)) for d in spec.get("holidays", [])}
            workdays = {date.fromisoformat(str(d)) for d in spec.get("workdays", [])}
            years = {int(y) for y in spec.get("years", [])}
        except (ValueError, TypeError) as exc:
            raise CalendarError(f"{override}: bad date or year: {exc}") from None
        both = holidays & workdays
        if both:
            raise CalendarError(f"{override}: {min(both)} is both a holiday and a workday")
        return cls(holidays, workdays, years, str(override))

    def is_working_day(self, day: date) -> bool:
        known = self._cache.get(day)
        if known is None:
            known = self._cache[day] = self._decide(day)
        return known

    def _decide(self, day: date) -> bool:
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        if day.year in self.years:
            return day.weekday() < 5
        import chinese_calendar

        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            where = f" nor in {self.override_name}" if self.override_name else ""
            raise CalendarError(
                f"working days of {day.year} are not known to chinese-calendar{where}: "
                f"add the year's holidays and make-up days to a calendar override file"
            ) from None

    def source(self, day: date) -> str:
        """Which source decided `day` (for a finding's evidence)."""
        if day in self.holidays or day in self.workdays or day.year in self.years:
            return f"calendar override {self.override_name}"
        return "chinese-calendar"

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        nxt = day + timedelta(days=1)
        for _ in range(40):  # the longest run of days off (Spring Festival) is well below
            if self.is_working_day(nxt):
                return nxt
            nxt += timedelta(days=1)
        raise CalendarError(f"no working day within 40 days after {day}: check the calendar")
