"""The terminal half of the path: what the receipt's state says about the money.

Matching (RRN, else natural key and amount), originals closed by voids and completions,
re-swipes after a no-response, and the device timeline around the transaction.
"""

from __future__ import annotations

from collections import defaultdict

from daozhang.correlate.data import Data, Detail, Merchant, Receipt, Timeline
from daozhang.correlate.finding import RESWIPE_S, Context, Finding
from daozhang.correlate.money import money


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
        self._all_keys: dict[tuple[str, str, str, str], list[Detail]] | None = None
        self._detail = data.detail
        self.used: set[int] = set()
        # Originals that were completed or voided, by (mid, tid, trc) and by RRN.
        self.closed: set[tuple[str, str, str]] = set()
        self.closed_rrn: set[str] = set()
        self.reswipes: dict[tuple[str, str, str, int], list[int]] = {}
        undoing = ("void", "preauth_void", "preauth_done", "preauth_done_void")
        for r in data.receipts:
            if r.typ in undoing and r.st in ("approved", "offline_sent", "offline_pending"):
                if r.otrc:
                    self.closed.add((r.mid, r.tid, r.otrc))
                if r.orrn:
                    self.closed_rrn.add(r.orrn)
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
        if r.rrn:
            d = self.by_rrn.get(r.rrn)
            if d is not None and d.mid == r.mid:
                return d
            for d in self.more_rrn.get(r.rrn, ()):
                if d.mid == r.mid:
                    return d
        if self._all_keys is None:
            # Built once, on the first receipt without an RRN match.
            self._all_keys = defaultdict(list)
            for d in self._detail:
                self._all_keys[(d.mid, d.tid, d.bat, d.trc)].append(d)
        for d in self._all_keys.get((r.mid, r.tid, r.bat, r.trc), ()):
            if d.amt == r.amt:
                return d
        return None


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


def _network(f: Finding, r: Receipt, line: Timeline | None) -> None:
    """The device timeline around the transaction: outages with their stage, and signal."""
    if line is None or r.lt is None:
        f.confidence = min(f.confidence, 0.7)
        return
    near = line.outages_near(r.lt)
    for o in near[:3]:
        f.add(
            (
                "diag_event",
                "link down {0} .. {1} at stage {2} ({3})",
                (o.start, o.end, o.stage, o.why),
            )
        )
    sig = line.signal_at(r.lt)
    if sig is not None:
        f.add(("diag_event", "signal before the transaction: {0}", (sig,)))
    if not near:
        f.confidence = min(f.confidence, 0.75)


def receipt(r: Receipt, d: Detail | None, data: Data, idx: Index, ctx: Context) -> Finding:
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
        f.rule = when.rule
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
                    f.add(("receipt", "same card and amount approved again at {0}", (t2,)))
                    break
    if terminal:
        f.set_cause(terminal)
        _network(f, r, line)
        if not settled_row:
            f.status = "gap"
            if terminal != "unknown":
                f.confidence = max(f.confidence, 0.9) if f.confidence > 0.75 else 0.8
            f.row = d
            return f
        f.add(("settlement_row", "but the acquirer cleared it anyway", ()))
    if r.st in ("offline_pending", "offline_sent") and d is None:
        _network(f, r, line)
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
