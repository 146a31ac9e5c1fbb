"""From the acquirer's detail row to the bank account: the money half of the path.

Shared by receipts and by detail rows no receipt matched. Order: no row (not due yet, file not
imported, or the acquirer), then the row's flag, then the payout (missing, in progress, failed
or bounced, frozen, short by a hold or a charge), then the fee against the agreed rate.
"""

from __future__ import annotations

from datetime import date

from daozhang.correlate.data import Data, Detail, Merchant, Payout
from daozhang.correlate.finding import (
    Context,
    Evidence,
    Finding,
    bank_overdue_days,
    expected_fee,
    reserve_fact,
    reserve_until,
)
from daozhang.settle.policy import Due


def money(
    f: Finding, d: Detail | None, data: Data, ctx: Context, when: Due, m: Merchant | None, ck: str
) -> Finding:
    """From the acquirer's row to the bank account."""
    acquirer = m.acquirer if m else ""
    if d is None:
        f.rule = when.rule
        if when.expected > ctx.as_of_date:
            f.status = "pending"
            f.set_cause("timing")
            f.confidence = max(f.confidence, 0.9)
            return f
        if _delayed(f, when.expected, m, ctx):
            return f
        if not data.file_imported("detail", acquirer, when.expected):
            f.status = "gap"
            f.set_cause("file_missing")
            f.add(
                (
                    "settlement_file",
                    "no detail file imported for {0} {1}",
                    (acquirer or "(any acquirer)", when.expected),
                )
            )
            return f
        f.status = "gap"
        f.awaiting_acquirer = True  # resolved across merchants in _acquirer_side
        f.add(
            (
                "settlement_file",
                "detail file for {0} {1} imported; no row",
                (acquirer or "(any acquirer)", when.expected),
            )
        )
        return f
    f.rrn = f.rrn or d.rrn
    f.payout_id = d.payout_id
    f.row = d
    settle_day = date.fromisoformat(d.settle_date)
    if f.expected_date is None or settle_day > f.expected_date:
        f.expected_date = settle_day
    if d.check_flag == "B":
        f.status = "gap"
        f.set_cause("unknown")
        f.confidence = 0.6
        return f
    p = data.payouts.get(d.payout_id) if d.payout_id else None
    if p is None:
        if settle_day > ctx.as_of_date:
            f.status = "pending"
            f.set_cause("timing")
            return f
        if _delayed(f, settle_day, m, ctx):
            return f
        if not data.file_imported("payout", acquirer, settle_day):
            f.status = "gap"
            f.set_cause("file_missing")
            f.add(
                (
                    "settlement_file",
                    "no payout file imported for {0} {1}",
                    (acquirer or "(any acquirer)", settle_day),
                )
            )
            return f
        f.status = "gap"
        f.awaiting_acquirer = True
        f.add(("payout", "payout {0} is in no imported payout file", (d.payout_id,)))
        return f
    f.payout = p
    share = d.settle_amt
    if p.state == "in_progress":
        overdue = bank_overdue_days(p, ctx.as_of_date)
        if overdue:
            f.status, f.paid_fen, f.short_fen = "gap", 0, share
            f.set_cause("bank_delay")
            f.add(_bank_delay_fact(p, overdue))
        else:
            f.status = "pending"
            f.set_cause("timing")
        return f
    if p.state in ("failed", "bounced"):
        f.status, f.paid_fen, f.short_fen = "gap", 0, share
        f.set_cause("account_problem")
        if m is not None and m.status != "active":
            f.add(("merchant", "merchant status {0}", (m.status,)))
        f.confidence = 0.95
        return f
    if p.state == "frozen":
        f.status, f.paid_fen, f.short_fen = "gap", 0, share
        f.set_cause("risk_hold")
        f.confidence = 0.9
        return f
    short = p.plan_fen - p.real_fen
    if short > 0 and p.plan_fen > 0:
        f.short_fen = (short * share + p.plan_fen // 2) // p.plan_fen
        f.paid_fen = share - f.short_fen
        f.status = "settled_short"
        until = reserve_until(p, m)
        if until is not None and m is not None and not p.fee_fen:
            f.add(reserve_fact(p, m, until))
            if until > ctx.as_of_date:
                # Not short: retained as agreed, and due on the release date.
                f.status, f.expected_date = "pending", until
                f.held_fen, f.short_fen = f.short_fen, 0
                f.set_cause("settlement_delay")
            else:
                f.set_cause("risk_hold")
                f.add(("merchant", "the reserve's release date {0} has passed", (until,)))
        elif p.suspend_fen or p.retained_fen:
            f.set_cause("risk_hold")
        elif p.fee_fen:
            f.set_cause("fee")
            f.add(("payout", "payout charge {0} fen (e.g. D0 surcharge)", (p.fee_fen,)))
        else:
            f.set_cause("unknown")
        f.confidence = 0.9
        return f
    f.paid_fen = share
    if d.direction == "in" and d.typ == "sale":
        fair = expected_fee(m, d.amt, d.ck or ck)
        if fair is not None and d.fee > fair + 1:
            f.status, f.short_fen = "settled_short", d.fee - fair
            f.set_cause("fee")
            f.add(
                (
                    "merchant",
                    "agreed fee {0} fen at rate {1}; charged {2}",
                    (fair, m.fee_rate if m else "", d.fee),
                )
            )
            return f
    f.status = "settled"
    if f.cause:
        f.also = [f.cause, *(f.also or ())]
        f.cause = ""  # DESIGN §2.2: no cause for settled money; it stays in the evidence
    f.confidence = 0.99
    return f


def _delayed(f: Finding, day: date, m: Merchant | None, ctx: Context) -> bool:
    """Due on `day` by the rules, but the merchant's delayed settlement (延时结算) moves it on:
    pending until then (True), or past that too (False, with the setting as evidence)."""
    if m is None or not m.delay_days:
        return False
    later = ctx.delayed(day, m.delay_days)
    f.add(
        (
            "merchant",
            "merchant setting: settlement delayed {0} working day(s), from {1} to {2}",
            (m.delay_days, day, later),
        )
    )
    if later <= ctx.as_of_date:
        return False
    f.status, f.expected_date, f.held_fen = "pending", later, f.amount_fen
    f.set_cause("settlement_delay")
    f.confidence = max(f.confidence, 0.9)
    return True


def _bank_delay_fact(p: Payout, overdue: int) -> tuple[str, str, tuple[object, ...]]:
    return (
        "payout",
        "payout {0} of {1} left the acquirer and is still in progress {2} day(s) past the"
        " bank's usual time: ask the acquirer for its bank trace number",
        (p.payout_id, p.settle_date, overdue),
    )


def payout_finding_cause(p: Payout, as_of: date) -> tuple[str, str, list[Evidence]]:
    """(status, cause, evidence) of a payout still in progress: pending, or late at the bank."""
    overdue = bank_overdue_days(p, as_of)
    if overdue:
        return "gap", "bank_delay", [_bank_delay_fact(p, overdue)]
    return "pending", "timing", []
