"""When a transaction's money is due: DE15 date or the acquirer's policy, over the calendar.

Policy file (TOML); `[default]` applies to every acquirer, `[acquirers.CODE]` overrides it:

    [default]
    day_cut = "23:00"          # Beijing time; later transactions count for the next day
    settle_type = "T1"         # when neither the receipt (sm) nor the merchant says
    d0_window = ["00:00", "22:00"]   # D0 pays the same day only inside this window
    preauth_days = 30          # an open pre-authorisation expires after this many days

    [acquirers.ACQ2]
    day_cut = "22:00"

Rules: business day = the DE15 settle date (`sd`, the acquirer already applied its cut) when
the receipt has one, else the Beijing date of `lt`, plus one day at or after the day cut.
T1 pays the next working day after the business day; D1 the next calendar day; D0 the same
day inside the window, else the next calendar day.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from daozhang.errors import InputError
from daozhang.settle.calendar import WorkingCalendar
from daozhang.settle.rows import SETTLE_TYPES
from daozhang.units import BEIJING


@dataclass(frozen=True)
class Policy:
    acquirer: str = ""
    day_cut: time = time(23, 0)
    settle_type: str = "T1"
    d0_start: time = time(0, 0)
    d0_end: time = time(22, 0)
    preauth_days: int = 30
    source: str = "built-in default policy"


@dataclass(frozen=True)
class Due:
    business_day: date
    expected: date
    settle_type: str
    rule: str  # one plain sentence for the evidence


class Policies:
    def __init__(self, default: Policy, by_acquirer: dict[str, Policy]) -> None:
        self.default = default
        self.by_acquirer = by_acquirer

    @classmethod
    def load(cls, path: Path | None = None) -> Policies:
        if path is None:
            return cls(Policy(), {})
        try:
            spec = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read the settlement policy: {exc}") from None
        default = _apply(Policy(source=str(path)), spec.get("default", {}), f"{path} [default]")
        by = {
            code: replace(
                _apply(default, table, f"{path} [acquirers.{code}]"),
                acquirer=code,
                source=f"{path} [acquirers.{code}]",
            )
            for code, table in spec.get("acquirers", {}).items()
        }
        return cls(default, by)

    def for_acquirer(self, acquirer: str) -> Policy:
        return self.by_acquirer.get(acquirer, self.default)


def _clock(text: Any, where: str, key: str) -> time:
    try:
        return time.fromisoformat(str(text))
    except ValueError:
        raise InputError(f"{where}: {key}: expected HH:MM, got {text!r}") from None


def _apply(base: Policy, table: dict[str, Any], where: str) -> Policy:
    unknown = set(table) - {"day_cut", "settle_type", "d0_window", "preauth_days"}
    if unknown:
        raise InputError(f"{where}: unknown keys: {', '.join(sorted(unknown))}")
    policy = base
    if "day_cut" in table:
        policy = replace(policy, day_cut=_clock(table["day_cut"], where, "day_cut"))
    if "settle_type" in table:
        if table["settle_type"] not in SETTLE_TYPES:
            raise InputError(f"{where}: settle_type: expected one of {', '.join(SETTLE_TYPES)}")
        policy = replace(policy, settle_type=str(table["settle_type"]))
    if "d0_window" in table:
        window = table["d0_window"]
        if not isinstance(window, list) or len(window) != 2:
            raise InputError(f'{where}: d0_window: expected ["HH:MM", "HH:MM"]')
        policy = replace(
            policy,
            d0_start=_clock(window[0], where, "d0_window"),
            d0_end=_clock(window[1], where, "d0_window"),
        )
    if "preauth_days" in table:
        policy = replace(policy, preauth_days=int(table["preauth_days"]))
    return policy


def de15_date(sd: str, lt: int) -> date | None:
    """The year-less DE15 `MMDD` as the date nearest the transaction time."""
    if len(sd) != 4 or not sd.isdigit():
        return None
    local = datetime.fromtimestamp(lt, BEIJING).date()
    best: date | None = None
    for year in (local.year - 1, local.year, local.year + 1):
        try:
            candidate = date(year, int(sd[:2]), int(sd[2:]))
        except ValueError:
            continue
        if best is None or abs((candidate - local).days) < abs((best - local).days):
            best = candidate
    return best


def due(lt: int, settle_type: str, policy: Policy, calendar: WorkingCalendar, sd: str = "") -> Due:
    local = datetime.fromtimestamp(lt, BEIJING)
    business = de15_date(sd, lt) if sd else None
    if business is not None:
        how = f"DE15 settle date {business}"
    else:
        business = local.date()
        how = f"traded on {business}"
        if local.time() >= policy.day_cut:
            business += timedelta(days=1)
            how += f", after the {policy.day_cut:%H:%M} day cut: counts for {business}"
    if settle_type == "D0":
        inside = policy.d0_start <= local.time() < policy.d0_end and business == local.date()
        # After the day cut the sale already counts for the next day: D0 pays it in that day's
        # batch, not a day later again.
        after_cut = business > local.date()
        expected = business if inside or after_cut else business + timedelta(days=1)
        rule = "D0 inside the window: same day" if inside else "D0 outside the window: next day"
    elif settle_type == "D1":
        expected = business + timedelta(days=1)
        rule = "D1: next calendar day"
    else:
        settle_type = "T1"
        expected = calendar.next_working_day(business)
        skipped = (expected - business).days - 1
        rule = "T1: next working day" + (
            f" ({skipped} day(s) off skipped, {calendar.source(expected)})" if skipped else ""
        )
    return Due(business, expected, settle_type, f"{how}; {rule} → {expected}")
