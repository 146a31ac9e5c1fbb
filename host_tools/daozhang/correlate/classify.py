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
from daozhang.correlate.data import Beat, Data, Detail, Payout, Timeline
from daozhang.correlate.finding import (
    ACQUIRER_SIDE_MERCHANTS,
    CAUSES,
    DATA_VALUES,
    NETWORK_CAUSES,
    OUTAGE_WINDOW_S,
    SILENT_S,
    STATUSES,
    Context,
    Evidence,
    Finding,
    day_end,
    expected_fee,
    reserve_fact,
    reserve_until,
)
from daozhang.correlate.money import money, payout_finding_cause
from daozhang.correlate.terminal import Index, receipt, trouble
from daozhang.radio import describe
from daozhang.settle.notices import Notice

__all__ = ["CAUSES", "DATA_VALUES", "NETWORK_CAUSES", "STATUSES", "Context", "Finding", "classify"]


def classify(data: Data, ctx: Context) -> list[Finding]:
    """Every finding of `data`, judged over all of it (the whole store, or a scoped load
    whose acquirer-day counts are in `data.healthy_by_day`)."""
    findings, unpaid = judge_terminal_side(data, ctx)
    _acquirer_side(unpaid, data)
    finish(findings, data)
    payouts = payout_findings(data, ctx)
    maintenance([*findings, *payouts], data)
    return findings + payouts


def judge_terminal_side(data: Data, ctx: Context) -> tuple[list[Finding], list[Finding]]:
    """Every transaction judged up to the acquirer: the findings, and those of them that wait
    on the acquirer (due, file imported, no row or no payout), which `_acquirer_side` decides
    across merchants (a chunk of merchants hands them on: correlate/stream.py)."""
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
    registry = _Registry(data)
    if registry:
        # Before the acquirer is judged: a terminal set up wrong explains its own gaps, and
        # its sales are not healthy merchants unpaid.
        for f in findings:
            if f.receipt is not None and f.status != "not_expected":
                registry.check(f)
        unpaid = [f for f in unpaid if f.awaiting_acquirer]
    return findings, unpaid


def finish(findings: list[Finding], data: Data) -> None:
    """After the acquirer's judgement: what the terminal's diagnostics show around each sale
    whose money is missing, and a record lost in a restart."""
    for f in findings:
        if f.status in ("gap", "settled_short") and f.cause not in NETWORK_CAUSES:
            _terminal_was_fine(f, data.timelines.get(f.dev))
        if f.status in ("gap", "settled_short") or f.data in _LOST:
            restart = trouble(f, data.timelines.get(f.dev), f.lt)
            if restart is not None and f.receipt is None and f.data in _LOST:
                # The acquirer has the sale, the terminal has no record of it, and the
                # terminal restarted right then: the record was lost in the restart.
                f.add(("diag_event", "the sale's record was lost in the restart", ()))
                if f.cause != "terminal_fault":
                    f.add_also("terminal_fault")


def payout_findings(data: Data, ctx: Context) -> list[Finding]:
    return [_payout(p, ctx.as_of_date, data) for p in data.payouts.values()]


def maintenance(findings: list[Finding], data: Data) -> None:
    """The acquirer's announced windows, cited where they held money up (last: they may
    change a cause the rules above set)."""
    if data.notices:
        for f in findings:
            if f.status not in ("settled", "not_expected"):
                _maintenance(f, data)


_LOST = ("no_receipt", "device_data_loss")


class _Registry:
    """The terminal numbers the merchants file registers (its `terminal_ids`): a receipt whose
    merchant or terminal number disagrees with them comes from a terminal set up wrong. Off
    when the file registers no terminal at all (the column is optional)."""

    def __init__(self, data: Data) -> None:
        self.merchants = data.merchants
        self.owners: dict[str, list[str]] = defaultdict(list)
        for m in data.merchants.values():
            for tid in m.terminals:
                self.owners[tid].append(m.mid)
        # Which terminals each device reported, for "its registered terminal is ...".
        self.by_dev: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for (mid, tid), dev in data.terminal_dev.items():
            self.by_dev[dev].append((mid, tid))

    def __bool__(self) -> bool:
        return bool(self.owners)

    def wrong(self, mid: str, tid: str) -> tuple[str, str] | None:
        owners = self.owners.get(tid, [])
        if owners and mid not in owners:
            return "tid_of_other_merchant", " ".join(owners)
        m = self.merchants.get(mid)
        if m is None:
            return "merchant_not_registered", ""
        if m.terminals and tid not in m.terminals:
            return "tid_not_registered", " ".join(m.terminals)
        return None

    def check(self, f: Finding) -> None:
        found = self.wrong(f.mid, f.tid)
        if found is None:
            return
        f.misconfig = found
        what, registered = found
        if what == "tid_of_other_merchant":
            fact = "terminal {1} is registered to merchant {2}, the receipt says merchant {0}"
        elif what == "merchant_not_registered":
            fact = "merchant {0} (terminal {1}) is not in the merchants file{2}"
        else:
            fact = "terminal {1} is not among merchant {0}'s registered terminals ({2})"
        f.add(("merchant", fact, (f.mid, f.tid, registered)))
        right = [k for k in self.by_dev.get(f.dev, ()) if self.wrong(*k) is None]
        if right:
            f.add(
                (
                    "merchant",
                    "device {0} also reports registered terminal {1}/{2}",
                    (f.dev, *right[0]),
                )
            )
        if f.awaiting_acquirer or (f.status == "gap" and f.cause == "unknown"):
            # The acquirer has no row (or no payout) under these numbers: set up wrong, the
            # sale went elsewhere or nowhere, which comes before anything the acquirer did.
            old = f.cause
            f.cause, f.confidence, f.awaiting_acquirer = "terminal_misconfigured", 0.85, False
            if old:
                f.add_also(old)
        elif f.cause != "terminal_misconfigured":
            f.add_also("terminal_misconfigured")


def _maintenance(f: Finding, data: Data) -> None:
    """An announced window of the acquirer between the sale and its payout date (or on the
    payout's date) is cited; it explains money the acquirer or its payout run held up."""
    if f.notice is not None:
        return  # already the cause (_acquirer_side)
    acquirer = f.acquirer
    if not acquirer:
        m = data.merchants.get(f.mid)
        acquirer = m.acquirer if m else ""
    if f.expected_date is None:
        return
    hi = day_end(f.expected_date)
    lo = f.lt if f.kind == "transaction" and f.lt else hi - 86_399
    n = data.window(acquirer, lo, hi)
    if n is None:
        return
    f.notice = n
    if f.cause in ("bank_delay", "unknown", "acquirer_side"):
        # The payout run or the clearing fell in the acquirer's own window: that, not the bank
        # or an unknown, is the first thing on the path that held the money.
        old = f.cause
        f.cause = ""
        f.set_cause("acquirer_maintenance")
        f.add_also(old)
    f.add(_notice_fact(n))


def _notice_fact(n: Notice) -> Evidence:
    return (
        "notice",
        "{0} announced {1} from {2} to {3} (notice line {4})",
        (n.acquirer, n.what, n.start, n.end, n.line),
    )


def _terminal_was_fine(f: Finding, line: Timeline | None) -> None:
    """Money missing for a reason upstream: say what the terminal's own diagnostics show
    around the sale, so that support can rule the network out with evidence."""
    if line is None or f.lt is None:
        return
    near = line.outages_near(f.lt, OUTAGE_WINDOW_S, OUTAGE_WINDOW_S)
    if not near:
        link = "link up, no outage within 15 minutes"
    elif any(o.covers(f.lt) for o in near):
        link = "link down at the sale"
    else:
        link = f"{len(near)} outage(s) within 15 minutes, none at the sale"
    before = line.signal_before(f.lt)
    signal = describe(before[1]) if before is not None else "no reading"
    beat = line.beat_after(f.lt)
    uploads = (
        "no heartbeat since"
        if beat is None
        else f"{'?' if beat.jrec is None else beat.jrec} records unsent at the next heartbeat"
    )
    f.add(
        (
            "diag_event",
            "the terminal around the sale: {0}; signal {1}; {2}",
            (link, signal, uploads),
        )
    )


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
    # No host time here: when the collector refused it is in the quarantine row, and a
    # finding must read the same whenever the upload arrived.
    if q.seq is None:
        template = (
            "the collector refused the upload carrying this receipt from device {0}"
            " ({1}: {2}); nothing in it was acked, so the device still holds it and resends it"
            " (quarantine row {3})"
        )
    else:
        template = (
            "the collector refused this receipt from device {0} ({1}: {2}); it counts"
            " as accounted for, so the device deleted it: quarantine row {3} is its only copy"
        )
    f.add(("quarantine", template, (q.dev or "?", q.reason, q.detail, q.id)))
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
    # Heard = a heartbeat, placed by the terminal's clock: a device silent since around the
    # sale holds it unsent. The host's receive time would call a day uploaded late "healthy".
    last = line.last_beat
    if last is None:
        f.add(("heartbeat", "no heartbeat from the device up to the as-of time", ()))
        return "no_receipt", 0.6
    if last.t < d.txn_time + SILENT_S and ctx.as_of - last.t > SILENT_S:
        f.add(
            (
                "heartbeat",
                "device last heard at {0}{1}, {2} records unsent then; silent since",
                (last.t, _placed(last), "?" if last.jrec is None else last.jrec),
            )
        )
        return "still_buffered", 0.85
    f.add(("heartbeat", "device last heard at {0}{1}: not silent since", (last.t, _placed(last))))
    return "no_receipt", 0.85


def _placed(beat: Beat) -> str:
    return " (time placed from its uptime)" if beat.placed else ""


AcquirerDay = tuple[str, date | None]


def _acquirer_side(unpaid: list[Finding], data: Data) -> None:
    """Many healthy merchants unpaid on one acquirer-day is the acquirer, not each of them."""
    for key, members in waiting_by_day(unpaid, data).items():
        # Counted across the acquirer-day by a scoped load (scope.py), or here.
        known = data.healthy_by_day.get(key)
        healthy = set(known) if known is not None else healthy_merchants(members, data)
        judge_acquirer_day(key, members, healthy)


def waiting_by_day(unpaid: list[Finding], data: Data) -> dict[AcquirerDay, list[Finding]]:
    """The findings waiting on the acquirer, by acquirer-day, less those an announced window
    of the acquirer over the day explains (those get the window as their cause here)."""
    groups: dict[AcquirerDay, list[Finding]] = defaultdict(list)
    for f in unpaid:
        groups[(f.acquirer, f.expected_date)].append(f)
    out: dict[AcquirerDay, list[Finding]] = {}
    for (acquirer, day), group in groups.items():
        members = [f for f in group if day is None or not _in_window(f, data, acquirer, day)]
        if members:
            out[(acquirer, day)] = members
    return out


def healthy_merchants(members: list[Finding], data: Data) -> set[str]:
    """The merchants among `members` whose terminal was healthy around the sale."""
    return {f.mid for f in members if healthy_at(f, data.timelines.get(f.dev))}


def judge_acquirer_day(key: AcquirerDay, members: list[Finding], healthy: set[str]) -> None:
    """`acquirer_side` when enough merchants of the acquirer-day were healthy, else `unknown`;
    `healthy` is counted over every merchant of the acquirer-day, not only `members`'."""
    acquirer, day = key
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


def healthy_at(f: Finding, line: Timeline | None) -> bool:
    """No outage of its terminal within 10 minutes of the sale (or nothing known of it)."""
    return f.lt is None or line is None or not line.outages_near(f.lt, 600, 600)


def _in_window(f: Finding, data: Data, acquirer: str, day: date) -> bool:
    """A gap on an acquirer-day inside an announced window: the window explains it."""
    n = data.window(acquirer, f.lt or day_end(day) - 86_399, day_end(day))
    if n is None:
        return False
    f.awaiting_acquirer = False
    f.cause, f.confidence, f.notice = "acquirer_maintenance", 0.85, n
    f.add(_notice_fact(n))
    return True


def _payout(p: Payout, as_of: date, data: Data) -> Finding:
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
    m = data.merchants.get(p.mid)
    f.acquirer = m.acquirer if m else ""
    if p.state in ("failed", "bounced"):
        f.status, f.cause, f.paid_fen = "gap", "account_problem", 0
    elif p.state == "frozen":
        f.status, f.cause, f.paid_fen = "gap", "risk_hold", 0
    elif p.state == "in_progress":
        f.status, f.cause, facts = payout_finding_cause(p, as_of)
        for fact in facts:
            f.add(fact)
    elif p.real_fen < p.plan_fen:
        f.status = "settled_short"
        f.cause = (
            "risk_hold" if p.suspend_fen or p.retained_fen else ("fee" if p.fee_fen else "unknown")
        )
        until = reserve_until(p, m)
        if until is not None and m is not None and not p.fee_fen:
            f.add(reserve_fact(p, m, until))
            if until > as_of:
                f.status, f.cause, f.expected_date = "pending", "settlement_delay", until
                f.held_fen = p.retained_fen
    f.short_fen = max(0, p.plan_fen - f.paid_fen) if f.status != "pending" else 0
    f.amount_fen = p.plan_fen
    return f
