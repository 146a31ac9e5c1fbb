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
from datetime import date

from daozhang.collector.quarantine_read import Refusal
from daozhang.correlate.data import Data, Detail, Payout, Timeline
from daozhang.correlate.finding import (
    ACQUIRER_SIDE_MERCHANTS,
    CAUSES,
    DATA_VALUES,
    NETWORK_CAUSES,
    SILENT_S,
    STATUSES,
    Context,
    Finding,
    expected_fee,
)
from daozhang.correlate.money import money
from daozhang.correlate.terminal import Index, receipt

__all__ = ["CAUSES", "DATA_VALUES", "NETWORK_CAUSES", "STATUSES", "Context", "Finding", "classify"]


def classify(data: Data, ctx: Context) -> list[Finding]:
    idx = Index(data)
    findings: list[Finding] = []
    unpaid: list[Finding] = []  # candidates for acquirer_side / unknown
    payouts, merchants = data.payouts, data.merchants
    days: dict[str, date] = {}
    append = findings.append
    for r, joined in zip(data.receipts, data.matched, strict=True):
        d = joined
        if d is None:
            d = idx.match(r)
            if d is not None:
                idx.used.add(id(d))
        elif r.st == "approved" and r.typ == "sale" and d.check_flag == "Y":
            # The common case, paid in full at the agreed fee, without the general path's
            # bookkeeping: this loop runs once per transaction the fleet ever made.
            p = payouts.get(d.payout_id)
            if p is not None and p.state == "paid" and p.real_fen >= p.plan_fen:
                m = merchants.get(r.mid)
                fair = expected_fee(m, d.amt, d.ck or r.ck or "")
                if fair is None or d.fee <= fair + 1:
                    day = days.get(d.settle_date)
                    if day is None:
                        day = days[d.settle_date] = date.fromisoformat(d.settle_date)
                    append(
                        Finding(
                            "transaction",
                            "settled",
                            "",
                            "complete",
                            r.mid,
                            r.tid,
                            r.bat,
                            r.trc,
                            r.dev,
                            r.rrn or d.rrn,
                            r.amt,
                            d.payout_id,
                            day,
                            d.settle_amt,
                            0,
                            0.99,
                            r.lt,
                            0,
                            m.acquirer if m else "",
                            r,
                            d,
                            p,
                        )
                    )
                    continue
        f = receipt(r, d, data, idx, ctx)
        append(f)
        if f.awaiting_acquirer:
            unpaid.append(f)
    for d in data.detail:
        if id(d) in idx.used or d.typ == "preauth":
            continue
        f = _detail_only(d, data, ctx)
        findings.append(f)
        if f.awaiting_acquirer:
            unpaid.append(f)
    _acquirer_side(unpaid, data)
    findings.extend(_payout(p) for p in data.payouts.values())
    return findings


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
    refused = data.refused.get((d.mid, d.rrn)) if d.rrn else None
    if refused is not None:
        f.dev = f.dev or refused.dev or ""
        f.data, f.confidence = _refused(f, refused)
    else:
        f.data, f.confidence = _data_value(f, d, data.timelines.get(dev), ctx)
    if d.typ not in ("sale", "preauth_done") or d.check_flag == "B":
        f.status = "not_expected"
        f.row = d
        return f
    sm = d.settle_type or (m.settle_type if m else "T1")
    when = ctx.due(d.txn_time, sm, m.acquirer if m else "", "")
    f.expected_date = when.expected
    conf = f.confidence
    money(f, d, data, ctx, when, m, d.ck)
    f.confidence = min(conf, f.confidence)
    return f


def _refused(f: Finding, q: Refusal) -> tuple[str, float]:
    """The device did report this receipt; the collector refused it (DESIGN §2.2 has no data
    value for that: `no_receipt` would say the device never reported it)."""
    if q.seq is None:
        template = (
            "the collector refused the upload carrying this receipt from device {0} at {1}"
            " ({2}: {3}); nothing in it was acked, so the device still holds it and resends it"
            " (quarantine row {4})"
        )
    else:
        template = (
            "the collector refused this receipt from device {0} at {1} ({2}: {3}); it counts"
            " as accounted for, so the device deleted it: quarantine row {4} is its only copy"
        )
    f.add(("quarantine", template, (q.dev or "?", q.last_at, q.reason, q.detail, q.id)))
    return "refused", 0.95


def _data_value(f: Finding, d: Detail, line: Timeline | None, ctx: Context) -> tuple[str, float]:
    if line is None:
        f.add(("receipt", "no device is known for terminal {0}/{1}", (d.mid, d.tid)))
        return "no_receipt", 0.6
    for lo, hi, t_lo, t_hi in line.lost:
        if t_lo <= d.txn_time <= t_hi:
            f.add(
                (
                    "diag_event",
                    "device declared seqs {0}..{1} lost ({2} .. {3})",
                    (lo, hi, t_lo, t_hi),
                )
            )
            return "device_data_loss", 0.9
    seen = line.last_seen
    if seen is not None and seen < d.txn_time + SILENT_S and ctx.as_of - seen > SILENT_S:
        f.add(
            (
                "heartbeat",
                "device last heard at {0}; {1} records unsent then",
                (seen, line.last_jrec),
            )
        )
        return "still_buffered", 0.85
    f.add(("heartbeat", "device healthy: last heard at {0}", (seen,)))
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
            f.awaiting_acquirer = False
            if side:
                f.cause, f.confidence = "acquirer_side", 0.85
                f.add(
                    (
                        "settlement_row",
                        "{0} healthy merchants of {1} unpaid on {2}",
                        (len(healthy), acquirer or "(any acquirer)", day),
                    )
                )
            else:
                f.cause, f.confidence = "unknown", 0.5
                f.add(
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
    f.payout = p
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
