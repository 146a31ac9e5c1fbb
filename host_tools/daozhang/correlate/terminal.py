"""The terminal half of the path: what the receipt's state says about the money.

Matching (RRN, else order number, channel id, terminal + trace + date, terminal + amount +
time), originals closed by voids and completions,
re-swipes after a no-response, and the device timeline around the transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from daozhang.correlate.data import Data, Detail, Merchant, Reboot, Receipt, Timeline
from daozhang.correlate.finding import (
    JOIN_WINDOW_S,
    OUTAGE_WINDOW_S,
    REBOOT_AFTER_S,
    REBOOT_BEFORE_S,
    RESWIPE_S,
    Context,
    Finding,
)
from daozhang.correlate.money import money
from daozhang.radio import describe
from daozhang.units import BEIJING


class Index:
    def __init__(self, data: Data) -> None:
        # One row per RRN is the rule; the few repeats (a void and its sale may share one at
        # some acquirers) go to a side map checked only when the first row does not fit.
        self.by_rrn: dict[str, Detail] = {d.rrn: d for d in reversed(data.detail)}
        self.more_rrn: dict[str, list[Detail]] = defaultdict(list)
        if len(self.by_rrn) < len(data.detail):
            for d in data.detail:
                if self.by_rrn[d.rrn] is not d:
                    self.more_rrn[d.rrn].append(d)
        self._keys: _Keys | None = None
        self._detail = data.detail
        self.used: set[int] = set()
        # Originals that were completed or voided, by (mid, tid, trc) and by RRN.
        self.closed: set[tuple[str, str, str]] = set()
        self.closed_rrn: set[str] = set(data.closed_rrn)  # those of a part's outside, too
        # Sales voided by a void receipt, when the terminal did not report the sale again as
        # `voided`: the void names it (otrc / orrn) and the merchant expects no money.
        self.voided: dict[tuple[str, str, str], Receipt] = {}
        self.voided_rrn: dict[tuple[str, str], Receipt] = {}
        self.reswipes: dict[tuple[str, str, str, int], list[int]] = {}
        undoing = ("void", "preauth_void", "preauth_done", "preauth_done_void")
        for r in data.receipts:
            if r.typ in undoing and r.st in ("approved", "offline_sent", "offline_pending"):
                if r.otrc:
                    self.closed.add((r.mid, r.tid, r.otrc))
                if r.orrn:
                    self.closed_rrn.add(r.orrn)
                if r.typ == "void":
                    if r.otrc:
                        self.voided[(r.mid, r.tid, r.otrc)] = r
                    if r.orrn:
                        self.voided_rrn[(r.mid, r.orrn)] = r
            elif r.st == "no_response" and r.pan:
                self.reswipes[(r.mid, r.tid, r.pan, r.amt)] = []
        if self.reswipes:  # only the card/amount pairs that had a no-response
            pans = {key[2] for key in self.reswipes}  # a cheap first filter: same masked card
            for r in data.receipts:
                if r.pan in pans and r.typ == "sale" and r.st == "approved" and r.lt is not None:
                    seen = self.reswipes.get((r.mid, r.tid, r.pan, r.amt))
                    if seen is not None:
                        seen.append(r.lt)
        for d in (*data.detail, *(m for m in data.matched if m is not None and m.orrn)):
            if d.typ in ("preauth_done", "preauth_void") and d.orrn:
                self.closed_rrn.add(d.orrn)

    def match(self, r: Receipt) -> Detail | None:
        """The detail row of a receipt the database's RRN join left unmatched: by RRN (a
        repeated one), else the order number, else the channel's id, else terminal + trace +
        date, else terminal + amount + time (DESIGN §2.3); `joined_by` says which."""
        if r.rrn:
            d = self.by_rrn.get(r.rrn)
            if d is not None and d.mid == r.mid:
                return d
            for d in self.more_rrn.get(r.rrn, ()):
                if d.mid == r.mid:
                    return d
        if self._keys is None:
            self._keys = _Keys(self._detail)  # built once, on the first receipt left over
        return self._keys.find(r, self.used)


class _Keys:
    """The detail rows by every key a receipt may be joined on but the RRN."""

    def __init__(self, detail: list[Detail]) -> None:
        self.ord: dict[str, list[Detail]] = defaultdict(list)
        self.xid: dict[str, list[Detail]] = defaultdict(list)
        self.trace: dict[tuple[str, str, str], list[Detail]] = defaultdict(list)
        self.amount: dict[tuple[str, str, int], list[Detail]] = defaultdict(list)
        for d in detail:
            if d.ord:
                self.ord[d.ord].append(d)
            if d.xid:
                self.xid[d.xid].append(d)
            if d.trc:
                self.trace[(d.mid, d.tid, d.trc)].append(d)
            self.amount[(d.mid, d.tid, d.amt)].append(d)

    def find(self, r: Receipt, used: set[int]) -> Detail | None:
        def free(rows: list[Detail]) -> list[Detail]:
            return [d for d in rows if id(d) not in used and d.typ == r.typ]

        # An order number or channel id names one payment; its refund row repeats them (WeChat,
        # Alipay), told apart by type. Another merchant's row with the same order number (two
        # shops on the same POS software) is told apart by merchant, then amount.
        for rows in (self.ord.get(r.ord or ""), self.xid.get(r.xid or "")):
            found = free(rows or [])
            if found:
                same = [d for d in found if d.mid == r.mid] or [d for d in found if d.amt == r.amt]
                return (same or found)[0]
        day = _day(r.lt) if r.lt is not None else None
        # The same trace with another amount is another transaction (or a wrong file): said
        # as two findings, never joined.
        for d in free(self.trace.get((r.mid, r.tid, r.trc), [])):
            if d.amt != r.amt or (d.bat and d.bat != r.bat):
                continue
            if day is None or _day(d.txn_time) == day:
                return d
        if r.lt is not None:
            near = [
                d
                for d in free(self.amount.get((r.mid, r.tid, r.amt), []))
                if abs(d.txn_time - r.lt) <= JOIN_WINDOW_S
            ]
            if near:
                return min(near, key=lambda d: abs(d.txn_time - r.lt))  # type: ignore[operator]
        return None


def _day(t: int) -> int:
    return (t + 8 * 3600) // 86_400  # the Beijing date, as a day number


def _base(r: Receipt, m: Merchant | None) -> Finding:
    return Finding(
        "transaction",
        "gap",
        "",
        "complete",
        r.mid,
        r.tid,
        r.bat,
        r.trc,
        r.dev,
        r.rrn or "",
        r.amt,
        lt=r.lt,
        acquirer=m.acquirer if m else "",
        receipt=r,
    )


# How sure a network-caused finding is, by what the terminal's own diagnostics say around the
# sale: the receipt alone (a response can be lost without the link going down) is less certain
# than a sale inside an outage the device journaled.
NO_TIMELINE, NO_OUTAGE_NEAR, OUTAGE_NEAR, INSIDE_OUTAGE = 0.7, 0.8, 0.9, 0.95


def _network(f: Finding, r: Receipt, line: Timeline | None) -> float:
    """The device timeline around the transaction, in event time: outages within 15 minutes
    with their stage, reason and length; the signal before the sale; the backlog and reconnects
    of the next heartbeat. Returns how strongly they back a network cause."""
    if line is None or r.lt is None:
        f.add(("correlation", "no diagnostics from the device around the sale", ()))
        return NO_TIMELINE
    near = line.outages_near(r.lt, OUTAGE_WINDOW_S, OUTAGE_WINDOW_S)
    inside = False
    for o in near[:3]:
        covers = o.covers(r.lt)
        inside = inside or covers
        if covers or f.outage is None:
            f.outage = o
        f.add(
            (
                "diag_event",
                "link down {0} .. {1} ({2}) at stage {3} ({4}){5}",
                (
                    o.start,
                    "still down" if o.end is None else o.end,
                    "open" if o.end is None else _duration(o.end - o.start),
                    o.stage,
                    o.why or "no reason given",
                    ": the sale fell inside it" if covers else "",
                ),
            )
        )
    before = line.signal_before(r.lt)
    if before is not None:
        f.add(
            ("diag_event", "signal at {0}, before the sale: {1}", (before[0], describe(before[1])))
        )
    beat = line.beat_after(r.lt)
    if beat is not None and beat.t <= r.lt + OUTAGE_WINDOW_S * 4:
        f.add(
            (
                "heartbeat",
                "next heartbeat at {0}: {1} records unsent, {2} reconnects since the one before",
                (beat.t, _count(beat.jrec), _count(beat.recon)),
            )
        )
    if inside:
        return INSIDE_OUTAGE
    return OUTAGE_NEAR if near else NO_OUTAGE_NEAR


_REVERSED = {None: "network_reversed", "98": "network_reversed", "96": "terminal_fault"}
_LOST_IN_RESTART = ("network_reversed", "reversal_pending")


def trouble(f: Finding, line: Timeline | None, t: int | None) -> Reboot | None:
    """Cite the terminal's restarts (15 minutes either side) and firmware changes (an hour)
    around `t`; return the restart that may have lost the sale: from just before it to
    REBOOT_AFTER_S after, the earliest."""
    if f.terminal_checked or line is None or t is None:
        return f.reboot
    f.terminal_checked = True
    near = line.reboots_near(t, OUTAGE_WINDOW_S, OUTAGE_WINDOW_S)
    for b in near[:3]:
        f.add(
            (
                "diag_event",
                "the terminal restarted ({0}) {1} {2}: {3}",
                (
                    b.cause,
                    "at" if b.exact else "by the heartbeat at",
                    b.t,
                    _offset(b.t - t),
                ),
            )
        )
    for c in line.firmware_near(t, 3600, 3600):
        f.add(
            (
                "heartbeat",
                "firmware changed from {0} to {1} between {2} and {3}",
                (c.old, c.new, c.after, c.t),
            )
        )
    lost = [b for b in near if t - REBOOT_BEFORE_S <= b.t <= t + REBOOT_AFTER_S]
    f.reboot = lost[0] if lost else None
    return f.reboot


def _offset(seconds: int) -> str:
    when = "after" if seconds >= 0 else "before"
    return f"{_duration(abs(seconds))} {when} the sale"


def _duration(seconds: int) -> str:
    minutes, secs = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def receipt(r: Receipt, d: Detail | None, data: Data, idx: Index, ctx: Context) -> Finding:
    m = data.merchants.get(r.mid)
    f = _base(r, m)
    if r.st == "declined":
        f.status, f.confidence = "not_expected", 0.99
        return f
    if r.typ in ("void", "preauth_void", "preauth_done_void", "refund") or r.st == "voided":
        f.status, f.confidence = "not_expected", 0.97
        return f
    if r.typ == "sale":
        void = idx.voided.get((r.mid, r.tid, r.trc))
        if void is None and r.rrn:
            void = idx.voided_rrn.get((r.mid, r.rrn))
        if void is not None:
            f.status, f.confidence = "not_expected", 0.95
            f.add(("receipt", "voided by void {0} at {1}", (void.trc, void.lt)))
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
        # No money until the merchant completes it; it may be completed until it expires
        # (the policy's `preauth_days`), after which the hold lapses and nothing will come.
        days = ctx.policies.for_acquirer(acquirer).preauth_days
        opened = datetime.fromtimestamp(lt, BEIJING).date()
        f.expected_date = expires = opened + timedelta(days=days)
        f.add(("policy", "pre-authorised on {0}; open pre-authorisations expire after {1}"
               " days → {2}", (opened.isoformat(), days, expires.isoformat())))  # fmt: skip
        if ctx.as_of_date >= expires:
            f.status, f.cause, f.confidence = "gap", "preauth_open", 0.9
        else:
            f.status, f.cause, f.confidence = "pending", "preauth_open", 0.85
        return f
    terminal = ""
    if r.st == "reversed":
        # rv 96: the terminal itself failed after the approval and reversed the sale (§1.2).
        terminal = _REVERSED.get(r.rv, "unknown")
    elif r.st == "reversal_failed":
        terminal = "reversal_failed"
    elif r.st in ("no_response", "reversal_pending"):
        terminal = "reversal_pending"
        if r.pan and r.lt is not None:
            for t2 in idx.reswipes.get((r.mid, r.tid, r.pan, r.amt), ()):
                if r.lt < t2 <= r.lt + RESWIPE_S:
                    terminal = "duplicate_charge_risk"
                    f.add(("receipt", "same card and amount approved again at {0}", (t2,)))
                    break
    if terminal:
        backing = _network(f, r, line)
        restart = trouble(f, line, r.lt)
        if terminal == "terminal_fault":
            backing = 0.95 if restart else 0.9
        elif restart and terminal in _LOST_IN_RESTART and backing != INSIDE_OUTAGE:
            # The link was up and the terminal restarted right after the sale: the restart,
            # not the network, lost the answer (or the reversal came after it).
            f.set_cause("terminal_fault")
            backing = 0.9
        f.set_cause(terminal)
        if not settled_row:
            f.status = "gap"
            if terminal != "unknown":
                f.confidence = backing
            f.row = d
            return f
        f.add(("settlement_row", "but the acquirer cleared it anyway", ()))
    if r.st in ("offline_pending", "offline_sent") and d is None:
        f.confidence = min(f.confidence, _network(f, r, line))
        if r.st == "offline_sent":
            late = ctx.due(r.t, sm, acquirer, "")
            if late.expected > when.expected:
                f.expected_date = late.expected
                f.add(("receipt", "sent to the acquirer at {0}: {1}", (r.t, late.rule)))
                f.status = "pending" if late.expected > ctx.as_of_date else "gap"
                f.cause = "late_upload"
                return f
        elif is_due:
            f.status, f.cause = "gap", "late_upload"
            f.add(("receipt", "approved offline; not uploaded to the acquirer", ()))
            return f
    return money(f, d, data, ctx, when, m, r.ck or "")
