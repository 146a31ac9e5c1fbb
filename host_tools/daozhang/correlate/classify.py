"""Give every transaction and payout one status, one cause (with the others as evidence), and
the state of its receipt record — DESIGN §2.2.

The path from the terminal to the bank account fixes precedence: what the terminal did to the
transaction (its receipt state) comes first, then whether the money is due yet, then whether
the due date's file was imported, then the acquirer (no row, or no payout), then the payout
(account, hold, fee). The first cause that applies is `cause`; later ones are kept in
`also` and shown in the evidence.

Matching: a receipt finds its detail row by RRN (same merchant); else by natural key and
amount. Voids and completions point at their original through `orrn`/`otrc`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from daozhang.correlate.data import Data, Detail, Merchant, Payout, Receipt, Timeline
from daozhang.settle.calendar import WorkingCalendar
from daozhang.settle.policy import Due, Policies, due
from daozhang.settle.rows import BEIJING

NETWORK_CAUSES = (
    "network_reversed",
    "reversal_pending",
    "reversal_failed",
    "duplicate_charge_risk",
    "late_upload",
)
CAUSES = (
    *NETWORK_CAUSES,
    "preauth_open",
    "timing",
    "file_missing",
    "account_problem",
    "risk_hold",
    "fee",
    "acquirer_side",
    "unknown",
)
DATA_VALUES = ("complete", "still_buffered", "device_data_loss", "no_receipt")
STATUSES = ("settled", "settled_short", "pending", "gap", "not_expected")
RESWIPE_S = 900  # a re-swipe of the same card and amount within 15 minutes
ACQUIRER_SIDE_MERCHANTS = 3  # this many healthy merchants unpaid on one acquirer-day
SILENT_S = 3600  # a device unheard for an hour after a transaction, and still silent

Evidence = tuple[str, str, tuple[Any, ...]]  # (source, template, args): rendered on output


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
    evidence: list[Evidence] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    plan_fen: int = 0
    acquirer: str = ""

    def set_cause(self, cause: str) -> None:
        if not self.cause:
            self.cause = cause
        elif cause != self.cause and cause not in self.also:
            self.also.append(cause)


@dataclass
class Context:
    as_of: int
    policies: Policies
    calendar: WorkingCalendar

    def __post_init__(self) -> None:
        self.as_of_date = datetime.fromtimestamp(self.as_of, BEIJING).date()
        self._due: dict[tuple[int, str, str, str], Due] = {}

    def due(self, lt: int, sm: str, acquirer: str, sd: str) -> Due:
        # Cache per minute: a million receipts share far fewer distinct minutes.
        key = (lt // 60, sm, acquirer, sd)
        hit = self._due.get(key)
        if hit is None:
            hit = self._due[key] = due(
                lt, sm, self.policies.for_acquirer(acquirer), self.calendar, sd
            )
        return hit


def expected_fee(m: Merchant | None, amt: int, ck: str) -> int | None:
    if m is None:
        return None
    fee = int((Decimal(amt) * Decimal(m.fee_rate)).quantize(Decimal(1), ROUND_HALF_UP))
    if ck == "D" and m.debit_cap_fen is not None:
        fee = min(fee, m.debit_cap_fen)
    return fee


class _Index:
    def __init__(self, data: Data) -> None:
        self.by_rrn: dict[str, list[Detail]] = defaultdict(list)
        self.by_key: dict[tuple[str, str, str, str], list[Detail]] = defaultdict(list)
        for d in data.detail:
            self.by_rrn[d.rrn].append(d)
            self.by_key[(d.mid, d.tid, d.bat, d.trc)].append(d)
        self.used: set[tuple[int, int]] = set()
        # Originals that were completed or voided, by (mid, tid, trc) and by RRN.
        self.closed: set[tuple[str, str, str]] = set()
        self.closed_rrn: set[str] = set()
        self.reswipes: dict[tuple[str, str, str, int], list[int]] = defaultdict(list)
        for r in data.receipts:
            if r.typ in ("void", "preauth_void", "preauth_done", "preauth_done_void") and (
                r.st in ("approved", "offline_sent", "offline_pending")
            ):
                if r.otrc:
                    self.closed.add((r.mid, r.tid, r.otrc))
                if r.orrn:
                    self.closed_rrn.add(r.orrn)
            if r.typ == "sale" and r.st == "approved" and r.pan and r.lt is not None:
                self.reswipes[(r.mid, r.tid, r.pan, r.amt)].append(r.lt)
        for d in data.detail:
            if d.typ in ("preauth_done", "preauth_void") and d.orrn:
                self.closed_rrn.add(d.orrn)

    def match(self, r: Receipt) -> Detail | None:
        if r.rrn:
            for d in self.by_rrn.get(r.rrn, ()):
                if d.mid == r.mid:
                    return d
        for d in self.by_key.get((r.mid, r.tid, r.bat, r.trc), ()):
            if d.amt == r.amt:
                return d
        return None


def classify(data: Data, ctx: Context) -> list[Finding]:
    idx = _Index(data)
    findings: list[Finding] = []
    unpaid: list[Finding] = []  # candidates for acquirer_side / unknown
    for r in data.receipts:
        d = idx.match(r)
        if d is not None:
            idx.used.add((d.file_id, d.line))
        f = _receipt(r, d, data, idx, ctx)
        findings.append(f)
        if f.cause == "" and f.status == "gap" and "acquirer" in f.also:
            unpaid.append(f)
    for d in data.detail:
        if (d.file_id, d.line) in idx.used or d.typ in ("preauth",):
            continue
        f = _detail_only(d, data, ctx)
        findings.append(f)
        if f.cause == "" and f.status == "gap" and "acquirer" in f.also:
            unpaid.append(f)
    _acquirer_side(unpaid, data)
    findings.extend(_payout(p) for p in data.payouts.values())
    return findings


def _base(r: Receipt, m: Merchant | None) -> Finding:
    f = Finding(
        "transaction",
        "gap",
        mid=r.mid,
        tid=r.tid,
        bat=r.bat,
        trc=r.trc,
        dev=r.dev,
        rrn=r.rrn or "",
        amount_fen=r.amt,
        lt=r.lt,
        acquirer=m.acquirer if m else "",
    )
    f.evidence.append(
        (
            "receipt",
            "receipt {0}/{1} batch {2} trace {3}: {4} {5} fen, {6}",
            (r.mid, r.tid, r.bat, r.trc, r.typ, r.amt, r.st),
        )
    )
    return f


def _network(f: Finding, r: Receipt, line: Timeline | None) -> None:
    """The device timeline around the transaction: outages with their stage, and signal."""
    if line is None or r.lt is None:
        f.confidence = min(f.confidence, 0.7)
        return
    near = line.outages_near(r.lt)
    for o in near[:3]:
        f.evidence.append(
            (
                "diag_event",
                "link down {0} .. {1} at stage {2} ({3})",
                (o.start, o.end, o.stage, o.why),
            )
        )
    sig = line.signal_at(r.lt)
    if sig is not None:
        f.evidence.append(("diag_event", "signal before the transaction: {0}", (sig,)))
    if not near:
        f.confidence = min(f.confidence, 0.75)


def _receipt(r: Receipt, d: Detail | None, data: Data, idx: _Index, ctx: Context) -> Finding:
    m = data.merchants.get(r.mid)
    f = _base(r, m)
    if r.st == "declined":
        f.status, f.confidence = "not_expected", 0.99
        return f
    if r.typ in ("void", "preauth_void", "preauth_done_void", "refund") or r.st == "voided":
        f.status, f.confidence = "not_expected", 0.97
        return f
    acquirer = m.acquirer if m else ""
    sm = r.sm or (m.settle_type if m else "") or ctx.policies.for_acquirer(acquirer).settle_type
    lt = r.lt if r.lt is not None else r.t
    when = ctx.due(lt, sm, acquirer, r.sd or "")
    f.expected_date = when.expected
    is_due = when.expected <= ctx.as_of_date
    line = data.timelines.get(r.dev)
    settled_row = d is not None and d.check_flag in ("Y", "L")
    if r.typ == "preauth":
        if (r.mid, r.tid, r.trc) in idx.closed or (r.rrn and r.rrn in idx.closed_rrn):
            f.status, f.confidence = "not_expected", 0.95
            return f
        f.evidence.append(("policy", "{0}", (when.rule,)))
        if is_due:
            f.status, f.cause, f.confidence = "gap", "preauth_open", 0.9
        else:
            f.status, f.cause, f.confidence = "pending", "timing", 0.85
        return f
    terminal = ""
    if r.st == "reversed":
        terminal = "network_reversed" if r.rv in (None, "98") else "unknown"
    elif r.st == "reversal_failed":
        terminal = "reversal_failed"
    elif r.st in ("no_response", "reversal_pending"):
        terminal = "reversal_pending"
        if r.pan and r.lt is not None:
            for t2 in idx.reswipes.get((r.mid, r.tid, r.pan, r.amt), ()):
                if r.lt < t2 <= r.lt + RESWIPE_S:
                    terminal = "duplicate_charge_risk"
                    f.evidence.append(
                        ("receipt", "same card and amount approved again at {0}", (t2,))
                    )
                    break
    if terminal:
        f.set_cause(terminal)
        _network(f, r, line)
        if not settled_row:
            f.status = "gap"
            if terminal != "unknown":
                f.confidence = max(f.confidence, 0.9) if f.confidence > 0.75 else 0.8
            if d is not None:
                f.evidence.append(
                    (
                        "settlement_row",
                        "acquirer row {0} line {1}: flag {2}",
                        (d.settle_date, d.line, d.check_flag),
                    )
                )
            return f
        f.evidence.append(
            (
                "settlement_row",
                "but the acquirer cleared it: {0} line {1}",
                (d.settle_date if d else "", d.line if d else 0),
            )
        )
    if r.st in ("offline_pending", "offline_sent") and d is None:
        _network(f, r, line)
        if r.st == "offline_sent":
            late = ctx.due(r.t, sm, acquirer, "")
            if late.expected > when.expected:
                f.expected_date = late.expected
                f.evidence.append(("receipt", "sent to the acquirer at {0}: {1}", (r.t, late.rule)))
                f.status = "pending" if late.expected > ctx.as_of_date else "gap"
                f.cause = "late_upload"
                return f
        elif is_due:
            f.status, f.cause = "gap", "late_upload"
            f.evidence.append(("receipt", "approved offline; not uploaded to the acquirer", ()))
            return f
    return _money(f, d, data, ctx, when, m, r.ck or "")


def _money(
    f: Finding, d: Detail | None, data: Data, ctx: Context, when: Due, m: Merchant | None, ck: str
) -> Finding:
    """From the acquirer's row to the bank account."""
    acquirer = m.acquirer if m else ""
    if d is None:
        f.evidence.append(("policy", "{0}", (when.rule,)))
        if when.expected > ctx.as_of_date:
            f.status = "pending"
            f.set_cause("timing")
            f.confidence = max(f.confidence, 0.9)
            return f
        if not data.file_imported("detail", acquirer, when.expected):
            f.status = "gap"
            f.set_cause("file_missing")
            f.evidence.append(
                (
                    "settlement_file",
                    "no detail file imported for {0} {1}",
                    (acquirer or "(any acquirer)", when.expected),
                )
            )
            return f
        f.status = "gap"
        f.also.append("acquirer")  # resolved across merchants in _acquirer_side
        f.evidence.append(
            (
                "settlement_file",
                "detail file for {0} {1} imported; no row",
                (acquirer or "(any acquirer)", when.expected),
            )
        )
        return f
    f.rrn = f.rrn or d.rrn
    f.payout_id = d.payout_id
    f.evidence.append(
        (
            "settlement_row",
            "acquirer row {0} line {1}: flag {2}, fee {3}, net {4}",
            (d.settle_date, d.line, d.check_flag, d.fee, d.settle_amt),
        )
    )
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
        if not data.file_imported("payout", acquirer, settle_day):
            f.status = "gap"
            f.set_cause("file_missing")
            f.evidence.append(
                (
                    "settlement_file",
                    "no payout file imported for {0} {1}",
                    (acquirer or "(any acquirer)", settle_day),
                )
            )
            return f
        f.status = "gap"
        f.also.append("acquirer")
        f.evidence.append(("payout", "payout {0} is in no imported payout file", (d.payout_id,)))
        return f
    f.evidence.append(
        (
            "payout",
            "payout {0} on {1}: {2}, plan {3}, real {4}",
            (p.payout_id, p.settle_date, p.state, p.plan_fen, p.real_fen),
        )
    )
    share = d.settle_amt
    if p.state == "in_progress":
        f.status = "pending"
        f.set_cause("timing")
        return f
    if p.state in ("failed", "bounced"):
        f.status, f.paid_fen, f.short_fen = "gap", 0, share
        f.set_cause("account_problem")
        f.evidence.append(("payout", "fail reason: {0}", (p.fail_reason,)))
        if m is not None and m.status != "active":
            f.evidence.append(("merchant", "merchant status {0}", (m.status,)))
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
        if p.suspend_fen or p.retained_fen:
            f.set_cause("risk_hold")
        elif p.fee_fen:
            f.set_cause("fee")
            f.evidence.append(("payout", "payout charge {0} fen (e.g. D0 surcharge)", (p.fee_fen,)))
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
            f.evidence.append(
                (
                    "merchant",
                    "agreed fee {0} fen at rate {1}; charged {2}",
                    (fair, m.fee_rate if m else "", d.fee),
                )
            )
            return f
    f.status = "settled"
    if f.cause:
        f.also.insert(0, f.cause)
        f.cause = ""  # DESIGN §2.2: no cause for settled money; it stays in the evidence
    f.confidence = 0.99
    return f


def _detail_only(d: Detail, data: Data, ctx: Context) -> Finding:
    m = data.merchants.get(d.mid)
    dev = data.terminal_dev.get((d.mid, d.tid), "")
    f = Finding(
        "transaction",
        "gap",
        mid=d.mid,
        tid=d.tid,
        bat=d.bat,
        trc=d.trc,
        dev=dev,
        rrn=d.rrn,
        amount_fen=d.amt,
        lt=d.txn_time,
        acquirer=m.acquirer if m else "",
    )
    f.data, f.confidence = _data_value(f, d, data.timelines.get(dev), ctx)
    if d.typ not in ("sale", "preauth_done") or d.check_flag == "B":
        f.status = "not_expected"
        f.evidence.append(
            (
                "settlement_row",
                "acquirer row {0} line {1}: {2}, flag {3}",
                (d.settle_date, d.line, d.typ, d.check_flag),
            )
        )
        return f
    sm = d.settle_type or (m.settle_type if m else "T1")
    when = ctx.due(d.txn_time, sm, m.acquirer if m else "", "")
    f.expected_date = when.expected
    conf = f.confidence
    _money(f, d, data, ctx, when, m, d.ck)
    f.confidence = min(conf, f.confidence)
    return f


def _data_value(f: Finding, d: Detail, line: Timeline | None, ctx: Context) -> tuple[str, float]:
    if line is None:
        f.evidence.append(("receipt", "no device is known for terminal {0}/{1}", (d.mid, d.tid)))
        return "no_receipt", 0.6
    for lo, hi, t_lo, t_hi in line.lost:
        if t_lo <= d.txn_time <= t_hi:
            f.evidence.append(
                (
                    "diag_event",
                    "device declared seqs {0}..{1} lost ({2} .. {3})",
                    (lo, hi, t_lo, t_hi),
                )
            )
            return "device_data_loss", 0.9
    seen = line.last_seen
    if seen is not None and seen < d.txn_time + SILENT_S and ctx.as_of - seen > SILENT_S:
        f.evidence.append(
            (
                "heartbeat",
                "device last heard at {0}; {1} records unsent then",
                (seen, line.last_jrec),
            )
        )
        return "still_buffered", 0.85
    f.evidence.append(("heartbeat", "device healthy: last heard at {0}", (seen,)))
    return "no_receipt", 0.85


def _acquirer_side(unpaid: list[Finding], data: Data) -> None:
    """Many healthy merchants unpaid on one acquirer-day is the acquirer, not each of them."""
    groups: dict[tuple[str, date | None], list[Finding]] = defaultdict(list)
    for f in unpaid:
        groups[(f.acquirer, f.expected_date)].append(f)
    for (acquirer, day), members in groups.items():
        healthy = set()
        for f in members:
            line = data.timelines.get(f.dev)
            if f.lt is None or line is None or not line.outages_near(f.lt, 600, 600):
                healthy.add(f.mid)
        side = len(healthy) >= ACQUIRER_SIDE_MERCHANTS
        for f in members:
            f.also.remove("acquirer")
            if side:
                f.cause, f.confidence = "acquirer_side", 0.85
                f.evidence.append(
                    (
                        "settlement_row",
                        "{0} healthy merchants of {1} unpaid on {2}",
                        (len(healthy), acquirer or "(any acquirer)", day),
                    )
                )
            else:
                f.cause, f.confidence = "unknown", 0.5
                f.evidence.append(
                    (
                        "settlement_row",
                        "only {0} merchant(s) of {1} unpaid on {2}",
                        (len(healthy) or 1, acquirer or "(any acquirer)", day),
                    )
                )


def _payout(p: Payout) -> Finding:
    f = Finding(
        "payout",
        "settled",
        mid=p.mid,
        payout_id=p.payout_id,
        plan_fen=p.plan_fen,
        paid_fen=p.real_fen,
        expected_date=date.fromisoformat(p.settle_date),
        confidence=0.95,
    )
    f.evidence.append(
        (
            "payout",
            "payout {0} on {1}: {2}, plan {3}, fee {4}, suspended {5}, retained {6}, real {7}",
            (
                p.payout_id,
                p.settle_date,
                p.state,
                p.plan_fen,
                p.fee_fen,
                p.suspend_fen,
                p.retained_fen,
                p.real_fen,
            ),
        )
    )
    if p.state in ("failed", "bounced"):
        f.status, f.cause, f.paid_fen = "gap", "account_problem", 0
    elif p.state == "frozen":
        f.status, f.cause, f.paid_fen = "gap", "risk_hold", 0
    elif p.state == "in_progress":
        f.status, f.cause = "pending", "timing"
    elif p.real_fen < p.plan_fen:
        f.status = "settled_short"
        f.cause = (
            "risk_hold" if p.suspend_fen or p.retained_fen else ("fee" if p.fee_fen else "unknown")
        )
    f.short_fen = max(0, p.plan_fen - f.paid_fen) if f.status != "pending" else 0
    f.amount_fen = p.plan_fen
    return f
