"""What correlation says about one transaction or payout, and the context it says it in.

A `Finding` keeps its evidence as references (receipt, detail row, payout) plus a few small
tuples, and formats sentences only when a report asks (`render.py`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from daozhang.correlate.data import Detail, Merchant, Outage, Payout, Reboot, Receipt
from daozhang.settle.calendar import WorkingCalendar
from daozhang.settle.notices import Notice
from daozhang.settle.policy import Due, Policies, due
from daozhang.units import BEIJING

NETWORK_CAUSES = (
    "network_reversed",
    "reversal_pending",
    "reversal_failed",
    "duplicate_charge_risk",
    "late_upload",
)
CAUSES = (
    *NETWORK_CAUSES,
    "terminal_fault",
    "terminal_misconfigured",
    "preauth_open",
    "timing",
    "settlement_delay",
    "file_missing",
    "account_problem",
    "risk_hold",
    "fee",
    "bank_delay",
    "acquirer_maintenance",
    "acquirer_side",
    "unknown",
)
DATA_VALUES = ("complete", "still_buffered", "device_data_loss", "refused", "no_receipt")
STATUSES = ("settled", "settled_short", "pending", "gap", "not_expected")
RESWIPE_S = 900  # a re-swipe of the same card and amount within 15 minutes
OUTAGE_WINDOW_S = 900  # an outage within 15 minutes of a sale is evidence about it
ACQUIRER_SIDE_MERCHANTS = 3  # this many healthy merchants unpaid on one acquirer-day
# A payout still "in progress" this many days after its date has left the acquirer and is late
# at the bank (banks credit a payout the same or the next working day).
BANK_GRACE_DAYS = 1
# A restart this soon after a sale that got no response, with the link up, lost the sale's
# answer on the terminal; one this soon after a sale the terminal never reported lost it.
REBOOT_AFTER_S = 300
REBOOT_BEFORE_S = 30
SILENT_S = 3600  # a device unheard for an hour after a transaction, and still silent

DAYS_OFF = re.compile(r"\((\d+) day\(s\) off skipped, ([^)]*)\)")

Evidence = tuple[str, str, tuple[Any, ...]]  # (source, template, args): rendered on output

# The templates of the facts every finding carries (render_fast.py fills them directly).
RECEIPT_FACT = "receipt {0}/{1} batch {2} trace {3}: {4} {5} fen at {6}, {7}"
ROW_FACT = "acquirer row for {0} (file {1} line {2}): flag {3}, amount {4}, fee {5}, net {6}"
ROW_FACT_JOINED = ROW_FACT + ", joined by {7}"
PAYOUT_FACT = "payout {0} on {1}: {2}, plan {3}, fee {4}, suspended {5}, retained {6}, paid {7} {8}"
CALENDAR_FACT = "{0} day(s) off between trade and payout ({1})"


# Terminal + amount + time: the terminal's clock and the acquirer's may differ by minutes.
JOIN_WINDOW_S = 600


def joined_by(r: Receipt, d: Detail) -> str:
    """Which key joined a receipt to its detail row (DESIGN §2.3), said in the evidence."""
    if r.rrn and r.rrn == d.rrn:
        return "RRN"
    if r.ord and r.ord == d.ord:
        return "order number (ord)"
    if r.xid and r.xid == d.xid:
        return "channel transaction id (xid)"
    if d.trc and (r.tid, r.trc) == (d.tid, d.trc):
        return "terminal + trace + date"
    return f"terminal + amount + time (within {JOIN_WINDOW_S // 60} min)"


@dataclass(slots=True)
class Finding:
    kind: str  # "transaction" | "payout"
    status: str
    cause: str = ""
    data: str = "complete"
    mid: str = ""
    tid: str = ""
    bat: str = ""
    trc: str = ""
    dev: str = ""
    rrn: str = ""
    amount_fen: int = 0
    payout_id: str = ""
    expected_date: date | None = None
    paid_fen: int = 0
    short_fen: int = 0
    confidence: float = 0.9
    lt: int | None = None
    plan_fen: int = 0
    acquirer: str = ""
    # Evidence is kept as references and small tuples, rendered only on output: classifying a
    # million transactions must not format a million sentences nobody reads.
    receipt: Receipt | None = None
    row: Detail | None = None
    payout: Payout | None = None
    rule: str = ""
    outage: Outage | None = None  # the terminal's outage at (or nearest) the sale
    notice: Notice | None = None  # the acquirer's announced window it fell in
    held_fen: int = 0  # money the merchant's own settings hold until `expected_date`
    reboot: Reboot | None = None  # the terminal's restart that lost or broke the sale
    terminal_checked: bool = False  # restarts and firmware near the sale already cited
    # (what is wrong, what is registered): the terminal's merchant or terminal number
    misconfig: tuple[str, str] | None = None
    extra: list[Evidence] | None = None
    also: list[str] | None = None
    awaiting_acquirer: bool = False  # due, file imported, no row/payout: decided across merchants

    def add(self, fact: Evidence) -> None:
        if self.extra is None:
            self.extra = []
        self.extra.append(fact)

    def set_cause(self, cause: str) -> None:
        if not self.cause:
            self.cause = cause
        elif cause != self.cause:
            self.add_also(cause)

    def add_also(self, cause: str) -> None:
        if self.also is None:
            self.also = []
        if cause not in self.also:
            self.also.append(cause)

    @property
    def evidence(self) -> list[Evidence]:
        """All facts, each naming its source, in path order (terminal first)."""
        out: list[Evidence] = []
        r = self.receipt
        if r is not None:
            out.append(
                ("receipt", RECEIPT_FACT, (r.mid, r.tid, r.bat, r.trc, r.typ, r.amt, r.lt, r.st))
            )
        if self.rule:
            out.append(("policy", "{0}", (self.rule,)))
            off = DAYS_OFF.search(self.rule)
            if off is not None:
                # Weekends, holidays and make-up days come from the working-day calendar.
                out.append(("calendar", CALENDAR_FACT, (off[1], off[2])))
        out.extend(self.extra or ())
        d = self.row
        if d is not None:
            out.append(
                (
                    "settlement_row",
                    ROW_FACT_JOINED if r else ROW_FACT,
                    (
                        d.settle_date,
                        d.file_id,
                        d.line,
                        d.check_flag,
                        d.amt,
                        d.fee,
                        d.settle_amt,
                        joined_by(r, d) if r else "",
                    ),
                )
            )
        p = self.payout
        if p is not None:
            out.append(
                (
                    "payout",
                    PAYOUT_FACT,
                    (
                        p.payout_id,
                        p.settle_date,
                        p.state,
                        p.plan_fen,
                        p.fee_fen,
                        p.suspend_fen,
                        p.retained_fen,
                        p.real_fen,
                        p.fail_reason,
                    ),
                )
            )
        return out


@dataclass
class Context:
    as_of: int
    policies: Policies
    calendar: WorkingCalendar

    @classmethod
    def of(
        cls, as_of: float | None, policy_file: Path | None, calendar_file: Path | None
    ) -> Context:
        """A run's context: as of `as_of` (now when None), the policy and calendar files
        (the built-in ones when None)."""
        return cls(
            as_of=int(time.time() if as_of is None else as_of),
            policies=Policies.load(policy_file),
            calendar=WorkingCalendar.load(calendar_file),
        )

    def __post_init__(self) -> None:
        self.as_of_date = datetime.fromtimestamp(self.as_of, BEIJING).date()
        self._due: dict[tuple[int, bool, bool, str, str, str], Due] = {}
        self._bounds: dict[str, tuple[int, int, int]] = {}

    def delayed(self, day: date, working_days: int) -> date:
        """`day` moved on by the merchant's delayed settlement, in working days."""
        for _ in range(working_days):
            day = self.calendar.next_working_day(day)
        return day

    def due(self, lt: int, sm: str, acquirer: str, sd: str) -> Due:
        # The answer depends only on the Beijing day, which side of the day cut and of the D0
        # window the time falls: a million receipts share a few hundred such keys.
        bounds = self._bounds.get(acquirer)
        if bounds is None:
            p = self.policies.for_acquirer(acquirer)
            bounds = self._bounds[acquirer] = (
                p.day_cut.hour * 3600 + p.day_cut.minute * 60,
                p.d0_start.hour * 3600 + p.d0_start.minute * 60,
                p.d0_end.hour * 3600 + p.d0_end.minute * 60,
            )
        local = lt + 8 * 3600
        day, sec = divmod(local, 86400)
        key = (day, sec >= bounds[0], bounds[1] <= sec < bounds[2], sm, acquirer, sd)
        hit = self._due.get(key)
        if hit is None:
            hit = self._due[key] = due(
                lt, sm, self.policies.for_acquirer(acquirer), self.calendar, sd
            )
        return hit


_PPM: dict[str, int] = {}


def expected_fee(m: Merchant | None, amt: int, ck: str) -> int | None:
    """The agreed fee: amount x rate, rounded half up to the fen, capped for debit cards."""
    if m is None:
        return None
    ppm = _PPM.get(m.fee_rate)
    if ppm is None:
        ppm = _PPM[m.fee_rate] = int(Decimal(m.fee_rate) * 1_000_000)
    fee = (amt * ppm + 500_000) // 1_000_000
    if ck == "D" and m.debit_cap_fen is not None and fee > m.debit_cap_fen:
        fee = m.debit_cap_fen
    return fee


def reserve_until(p: Payout, m: Merchant | None) -> date | None:
    """The release date when what a payout retained is the merchant's agreed reserve (its rate
    of the payout, to the fen) and nothing else was held; else None."""
    if m is None or not m.reserve_release or m.reserve_rate in ("", "0") or p.suspend_fen:
        return None
    reserve = (p.plan_fen * int(Decimal(m.reserve_rate) * 1_000_000) + 500_000) // 1_000_000
    if p.retained_fen <= 0 or abs(p.retained_fen - reserve) > 1:
        return None
    return date.fromisoformat(m.reserve_release)


def reserve_fact(p: Payout, m: Merchant, until: date) -> Evidence:
    return (
        "merchant",
        "reserve {0} of each payout, released on {1}: {2} fen of payout {3} retained",
        (m.reserve_rate, until, p.retained_fen, p.payout_id),
    )


def day_end(day: date) -> int:
    """The last second of a Beijing day, in unix seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp()) + 86_399


def bank_overdue_days(p: Payout, as_of: date) -> int:
    """Days a payout still in progress is past its date and the bank's grace; 0 when it is not."""
    if p.state != "in_progress":
        return 0
    late = (as_of - date.fromisoformat(p.settle_date)).days - BANK_GRACE_DAYS
    return max(0, late)
