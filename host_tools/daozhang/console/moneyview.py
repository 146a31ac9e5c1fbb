"""The money page: what is unpaid or short, summed by cause, acquirer and day; the findings
behind the sums with their evidence; the payouts that went wrong.

Unpaid is a `gap` finding's whole amount, short a `settled_short` finding's shortfall
(DESIGN §2.2). The day is the day the money was due (`expected_date`, Beijing), else the
sale's day: an acquirer that left a day unpaid shows as one acquirer-day. Findings come from
`finder.analysed` (the whole store, classified in the background a merchant range at a time
with only the problems kept: `Money`, kept by the console as a snapshot); lookup's scoped
findings are held equal to them by tests/lookup/test_scoped_equals_whole.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from daozhang.collector.quarantine_read import Refusal
from daozhang.console.finder import analysed
from daozhang.console.words import beijing, mask_pan, yuan
from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.correlate.render import evidence, explain
from daozhang.store import Store
from daozhang.units import BEIJING
from daozhang.words import CAUSE, DATA, STATUS, name

ROW_LIMIT = 500  # findings shown at once; the sums always cover all of them
NO_ACQUIRER = "-"


@dataclass(frozen=True)
class Sum:
    code: str  # what the row groups by: a cause code, an acquirer, a day
    words: str
    count: int
    unpaid: str
    short: str
    fen: int  # unpaid + short, for ordering


@dataclass(frozen=True)
class FindingRow:
    key: str  # mid/tid/bat/trc: the row's id on the page
    when: str
    day: str
    mid: str
    tid: str
    trc: str
    dev: str
    rrn: str
    card: str
    acquirer: str
    amount: str
    missing: str  # unpaid or short, in yuan
    status: str
    status_code: str
    cause: str
    cause_code: str
    network: bool
    data: str
    expected: str
    confidence: str
    explain_zh: str
    explain_en: str
    evidence: list[tuple[str, str]]  # (source, fact)


@dataclass(frozen=True)
class PayoutRow:
    payout_id: str
    mid: str
    day: str
    planned: str
    paid: str
    short: str
    status: str
    cause: str
    explain_zh: str
    explain_en: str


@dataclass(frozen=True)
class RefusedRow:
    dev: str
    mid: str
    tid: str
    trc: str
    rrn: str
    card: str
    amount: str
    reason: str
    when: str
    meaning_zh: str
    meaning_en: str


def refused_row(q: Refusal, body: dict[str, Any]) -> RefusedRow:
    """A receipt the collector refused, as support reads it: whether the terminal still has
    it (its whole batch refused, no ack) or the quarantine row is its only copy."""
    amt = body.get("amt")
    if q.seq is None:
        zh = f"整批上传被拒收（{q.reason}），未确认；凭条仍在终端上，终端会继续重传。"
        en = (
            f"The whole upload was refused ({q.reason}) and not acked: the receipt is still on"
            " the terminal, which keeps resending it."
        )
    else:
        zh = f"主机已收到此凭条，但采集器拒收（{q.reason}）；终端已删除，隔离区是唯一记录。"
        en = (
            f"The host received this receipt but refused it ({q.reason}); the terminal deleted"
            " it, so the quarantine row is its only copy."
        )
    return RefusedRow(
        dev=q.dev or "-",
        mid=str(body.get("mid", "-")),
        tid=str(body.get("tid", "-")),
        trc=str(body.get("trc", "-")),
        rrn=str(body.get("rrn", "-")),
        card=mask_pan(body.get("pan") if isinstance(body.get("pan"), str) else None),
        amount=yuan(amt) if isinstance(amt, int) else "-",
        reason=q.reason,
        when=beijing(q.last_at, seconds=True),
        meaning_zh=zh,
        meaning_en=en,
    )


@dataclass(frozen=True)
class MoneyView:
    as_of: str
    by_cause: list[Sum]
    by_acquirer: list[Sum]
    by_day: list[Sum]
    total: Sum
    rows: list[FindingRow]
    shown_of: int  # findings matching the filter (rows holds at most ROW_LIMIT of them)
    payouts: list[PayoutRow]


def missing_fen(f: Finding) -> int:
    if f.status == "gap":
        return f.amount_fen
    if f.status == "settled_short":
        return f.short_fen
    return 0


def day_of(f: Finding) -> str:
    if f.expected_date is not None:
        return f.expected_date.isoformat()
    if f.lt:
        return datetime.fromtimestamp(f.lt, BEIJING).date().isoformat()
    return "-"


def finding_row(f: Finding, acquirer: str = "") -> FindingRow:
    text = explain(f)
    card = f.receipt.pan if f.receipt is not None else (f.row.pan if f.row is not None else None)
    return FindingRow(
        key=f"{f.mid}/{f.tid}/{f.bat}/{f.trc}",
        when=beijing(f.lt, seconds=True),
        day=day_of(f),
        mid=f.mid,
        tid=f.tid,
        trc=f.trc,
        dev=f.dev or "-",
        rrn=f.rrn or "-",
        card=mask_pan(card),
        acquirer=acquirer or f.acquirer or NO_ACQUIRER,
        amount=yuan(f.amount_fen),
        missing=yuan(missing_fen(f)) if missing_fen(f) else "",
        status=name(STATUS, f.status),
        status_code=f.status,
        cause=name(CAUSE, f.cause),
        cause_code=f.cause,
        network=f.cause in NETWORK_CAUSES,
        data=name(DATA, f.data),
        expected=f.expected_date.isoformat() if f.expected_date else "-",
        confidence=f"{f.confidence:.0%}",
        explain_zh=text["zh"],
        explain_en=text["en"],
        evidence=[(e["source"], e["fact"]) for e in evidence(f)],
    )


def _sums(groups: dict[str, list[int]], words: dict[str, str]) -> list[Sum]:
    rows = [
        Sum(code, words.get(code, code), n, yuan(unpaid), yuan(short), unpaid + short)
        for code, (n, unpaid, short) in groups.items()
    ]
    return sorted(rows, key=lambda s: (-s.fen, s.code))


@dataclass(frozen=True)
class Money:
    """What the money page is drawn from, out of one whole-store classification: the console
    keeps it as a snapshot (app.py), so a page never classifies the store itself. Only the
    findings with money missing and the payouts that went wrong are kept, not the store's
    rows."""

    as_of: int
    acquirer_of: dict[str, str]  # merchant -> acquirer
    problems: list[Finding]  # transactions with money unpaid or short
    payouts: list[Finding]  # payouts not paid in full


def money_of(store: Store, now: float) -> Money:
    """The store classified a merchant range at a time, keeping only the problems: memory
    bounded by them, not by the store (issue 24)."""
    as_of, found = analysed(store, now)
    acquirer_of: dict[str, str] | None = None
    problems: list[Finding] = []
    payouts: list[Finding] = []
    for chunk in found:
        if acquirer_of is None:  # every chunk shares the merchants
            acquirer_of = {m.mid: m.acquirer for m in chunk.data.merchants.values()}
        for f in chunk.findings:
            if f.kind == "transaction" and missing_fen(f) > 0:
                problems.append(f)
            elif f.kind == "payout" and f.status not in ("settled", "not_expected", "pending"):
                payouts.append(f)
    return Money(as_of=as_of, acquirer_of=acquirer_of or {}, problems=problems, payouts=payouts)


def money_view(
    money: Money,
    cause: str | None = None,
    acquirer: str | None = None,
    day: str | None = None,
) -> MoneyView:
    acquirer_of, problems = money.acquirer_of, money.problems
    by: dict[str, dict[str, list[int]]] = {
        "cause": defaultdict(lambda: [0, 0, 0]),
        "acquirer": defaultdict(lambda: [0, 0, 0]),
        "day": defaultdict(lambda: [0, 0, 0]),
    }
    total = [0, 0, 0]
    for f in problems:
        keys = {
            "cause": f.cause or "unknown",
            "acquirer": f.acquirer or acquirer_of.get(f.mid) or NO_ACQUIRER,
            "day": day_of(f),
        }
        column = 1 if f.status == "gap" else 2
        for sums in (*(by[group][key] for group, key in keys.items()), total):
            sums[0] += 1
            sums[column] += missing_fen(f)
    cause_words = {code: name(CAUSE, code) for code in by["cause"]}
    chosen = [
        f
        for f in problems
        if (not cause or (f.cause or "unknown") == cause)
        and (not acquirer or (f.acquirer or acquirer_of.get(f.mid) or NO_ACQUIRER) == acquirer)
        and (not day or day_of(f) == day)
    ]
    chosen.sort(key=lambda f: (-missing_fen(f), -(f.lt or 0)))
    payouts = [
        PayoutRow(
            payout_id=f.payout_id,
            mid=f.mid,
            day=f.expected_date.isoformat() if f.expected_date else "-",
            planned=yuan(f.plan_fen),
            paid=yuan(f.paid_fen),
            short=yuan(f.short_fen),
            status=name(STATUS, f.status),
            cause=name(CAUSE, f.cause),
            explain_zh=explain(f)["zh"],
            explain_en=explain(f)["en"],
        )
        for f in money.payouts
    ]
    return MoneyView(
        as_of=beijing(money.as_of),
        by_cause=_sums(by["cause"], cause_words),
        by_acquirer=_sums(by["acquirer"], {}),
        by_day=sorted(_sums(by["day"], {}), key=lambda s: s.code, reverse=True),
        total=Sum("", "合计 total", total[0], yuan(total[1]), yuan(total[2]), total[1] + total[2]),
        rows=[finding_row(f, acquirer_of.get(f.mid, "")) for f in chosen[:ROW_LIMIT]],
        shown_of=len(chosen),
        payouts=payouts,
    )
