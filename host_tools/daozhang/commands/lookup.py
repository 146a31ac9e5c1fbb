"""`daozhang lookup`: one transaction for support staff on the phone with a merchant.

By what the caller has (correlate/search.py): `--rrn`; the slip's `--tid` and `--trace`
(凭证号) with an optional `--date`; `--mid` and `--date` with an optional `--amount`;
`--amount` and `--around "2026-11-19 15:00"` (`--window 3h`), with `--card-last4` when it was
a card; a QR sale's `--order` number (on the acquirer's row: receipts carry no `ord` yet). A
date alone is the whole Beijing day. Only the matches, their payouts and what the rules need
for them are classified (correlate/scope.py), never the whole store. Receipts the collector
refused (quarantine) are searched too: a refused record is in no finding, and without it
support would be told "no such transaction" about a receipt that did reach the host.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from daozhang.collector.quarantine_read import Refusal
from daozhang.commands.correlate import add_common, note_unstored, parse_time
from daozhang.contract import RECEIPT_INTS
from daozhang.correlate.answer import Line, due_of, lines, when, yuan
from daozhang.correlate.classify import Finding
from daozhang.correlate.lookup import look_up
from daozhang.correlate.render import to_dict
from daozhang.correlate.search import MAX_MATCHES, Match, Query, day_range
from daozhang.errors import UsageError
from daozhang.schema import open_database
from daozhang.units import BEIJING


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument("--rrn", help="retrieval reference number (12)")
    parser.add_argument("--tid", help="terminal number on the slip (8), with --trace")
    parser.add_argument("--trace", help="trace / 凭证号 on the slip (up to 6 digits)")
    parser.add_argument("--mid", help="merchant number (15), with --date")
    parser.add_argument("--date", help="YYYY-MM-DD, the whole Beijing day")
    parser.add_argument("--amount", help="amount in yuan, e.g. 3000 or 29.90")
    parser.add_argument("--around", help='"YYYY-MM-DD HH:MM" Beijing time (a date: that day)')
    parser.add_argument("--window", type=_hours, default=3.0, help="either side of --around: 3h")
    parser.add_argument("--card-last4", help="last four digits of the card")
    parser.add_argument("--order", help="a QR sale's order number (on the acquirer's row)")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh", help="first language (zh)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _hours(text: str) -> float:
    """`3h`, `90m` or a number of hours; more than zero, at most a year."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([hm]?)\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"expected hours like 3h or 90m, got {text!r}")
    hours = float(m[1]) / (60 if m[2] == "m" else 1)
    if not 0 < hours <= 24 * 366:
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most a year, got {text!r}")
    return hours


# The largest amount a receipt may carry (the wire contract's bound on `amt`, in fen).
_MAX_FEN = RECEIPT_INTS["amt"]


def _fen(text: str) -> int:
    """Yuan as the merchant says it ("3000", "¥3,000", "29.90") to fen; no more than two
    decimals, positive and finite (Decimal takes "nan", "inf" and "1e9999" too)."""
    wrong = UsageError(f"--amount: expected yuan like 3000 or 29.90, got {text!r}")
    try:
        value = Decimal(text.replace(",", "").lstrip("¥"))
    except InvalidOperation:
        raise wrong from None
    if not value.is_finite() or value <= 0:
        raise wrong
    fen = value * 100
    if fen != fen.to_integral_value():
        raise UsageError(f"--amount: at most two decimals (fen), got {text!r}")
    if fen > _MAX_FEN:
        raise UsageError(f"--amount: more than any receipt holds, got {text!r}")
    return int(fen)


_FORMS = (
    "give one of: --rrn; --tid with --trace [--date]; --mid with --date [--amount];"
    " --amount with --around [--window] [--card-last4]; --order"
)


def _field(value: str | None, option: str, pattern: str, what: str) -> str | None:
    if value is not None and re.fullmatch(pattern, value) is None:
        raise UsageError(f"{option}: expected {what}, got {value!r}")
    return value


def query(args: argparse.Namespace) -> Query:
    """The caller's facts as one search; a usage error names what goes together."""
    rrn = _field(args.rrn, "--rrn", r"[0-9A-Za-z]{12}", "12 letters or digits")
    tid = _field(args.tid, "--tid", r"[0-9A-Za-z]{8}", "8 letters or digits")
    trace = _field(args.trace, "--trace", r"\d{1,6}", "up to 6 digits")
    mid = _field(args.mid, "--mid", r"[0-9A-Za-z]{15}", "15 letters or digits")
    last4 = _field(args.card_last4, "--card-last4", r"\d{4}", "4 digits")
    order = _field(args.order, "--order", r"\S{1,64}", "an order number (up to 64)")
    fen = _fen(args.amount) if args.amount is not None else None
    day = _day(args.date) if args.date is not None else None
    given = {
        name
        for name, value in (
            ("rrn", rrn),
            ("tid", tid),
            ("trace", trace),
            ("mid", mid),
            ("amount", fen),
            ("around", args.around),
            ("card", last4),
            ("order", order),
            ("date", day),
        )
        if value is not None
    }
    if rrn is not None or order is not None:
        if len(given) != 1:
            raise UsageError(f"lookup: --{'rrn' if rrn else 'order'} goes alone; {_FORMS}")
        return Query(rrn=rrn, order=order)
    if tid is not None or trace is not None:
        if tid is None or trace is None or given - {"tid", "trace", "date"}:
            raise UsageError(f"lookup: --tid and --trace go together (with --date); {_FORMS}")
        lo, hi = day if day is not None else (None, None)
        return Query(tid=tid, trace=trace.zfill(6), lo=lo, hi=hi)
    if mid is not None:
        if day is None or given - {"mid", "date", "amount", "card"}:
            raise UsageError(f"lookup: --mid goes with --date (and --amount); {_FORMS}")
        return Query(mid=mid, lo=day[0], hi=day[1], fen=fen, last4=last4)
    if fen is not None and args.around is not None and not given - {"amount", "around", "card"}:
        around, lo, hi = _around(args.around, args.window)
        return Query(fen=fen, lo=lo, hi=hi, around=around, last4=last4)
    raise UsageError(f"lookup: {_FORMS}")


def _day(text: str) -> tuple[int, int]:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise UsageError(f"--date: expected YYYY-MM-DD (Beijing), got {text!r}") from None
    return day_range(day)


def _around(text: str, hours: float) -> tuple[int | None, int, int]:
    """A time with a window either side, or a date alone: that whole Beijing day."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        lo, hi = _day(text.strip())
        return None, lo, hi
    t = parse_time(text, "--around")
    assert t is not None
    span = int(hours * 3600)
    return int(t), int(t) - span, int(t) + span


@dataclass
class Answer:
    match: Match
    finding: Finding | None
    lines: list[Line]
    payout: Finding | None


def run(args: argparse.Namespace) -> int:
    q = query(args)
    as_of = parse_time(args.as_of, "--as-of")
    with open_database(args.db, create=False) as store:
        looked = look_up(store, q, as_of, args.policy, args.calendar)
        note_unstored(store, "lookup")
    answers = []
    for m in looked.matches:
        hit = looked.finding(m)
        data, ctx = looked.scoped.data, looked.scoped.ctx
        text = lines(hit, due_of(hit, data, ctx)) if hit is not None else []
        answers.append(Answer(m, hit, text, looked.payout(hit) if hit else None))
    refused, more = looked.refused, looked.more
    if args.json:
        _json(answers, refused, more)
    else:
        _show(answers, refused, more, args.lang)
    return 0 if answers or refused else 1


def _json(answers: list[Answer], refused: list[tuple[Refusal, dict[str, Any]]], more: bool) -> None:
    docs: list[dict[str, Any]] = []
    for a in answers:
        if a.finding is None:
            continue
        doc = to_dict(a.finding)
        doc["answer"] = {"zh": [zh for zh, _ in a.lines], "en": [en for _, en in a.lines]}
        if a.payout is not None:
            doc["payout"] = to_dict(a.payout)
        docs.append(doc)
    docs += [_refused_doc(q, body) for q, body in refused]
    if more:
        docs.append({"kind": "more", "note": f"more than {MAX_MATCHES} matches: narrow the search"})
    print(json.dumps(docs, ensure_ascii=False, indent=1))


def distinguishing(matches: list[Match]) -> list[str]:
    """Which of the matches' facts differ: what support asks the caller about."""
    facts: dict[str, list[object]] = {
        "time": [m.lt for m in matches],
        "amount": [m.fen for m in matches],
        "terminal": [m.tid for m in matches],
        "trace": [m.trc for m in matches],
        "card": [m.pan[-4:] for m in matches],
        "state": [m.state for m in matches],
    }
    return [name for name, values in facts.items() if len(set(values)) > 1]


_LABEL: dict[str, Line] = {
    "time": ("时间", "time"),
    "amount": ("金额", "amount"),
    "terminal": ("终端", "terminal"),
    "trace": ("凭证号", "trace"),
    "card": ("卡尾号", "card"),
    "state": ("状态", "state"),
}


def _title(m: Match, differ: list[str], lang: str) -> str:
    values = {
        "time": when(m.lt)[:16],
        "amount": yuan(m.fen),
        "terminal": m.tid,
        "trace": m.trc,
        "card": m.pan[-4:] or "-",
        "state": m.state,
    }
    shown = differ or ["amount", "time"]
    side = 0 if lang == "zh" else 1
    return " · ".join(f"{_LABEL[k][side]} {values[k]}" for k in shown)


def _show(
    answers: list[Answer], refused: list[tuple[Refusal, dict[str, Any]]], more: bool, lang: str
) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel

    console = Console()
    first = 0 if lang == "zh" else 1
    if not answers and not refused:
        console.print(
            "未找到匹配的交易（可放宽 --window 或核对金额）\n"
            "no matching transaction (widen --window, or check the amount)"
            if first == 0
            else "no matching transaction (widen --window, or check the amount)\n"
            "未找到匹配的交易（可放宽 --window 或核对金额）"
        )
    differ = distinguishing([a.match for a in answers]) if len(answers) > 1 else []
    if len(answers) > 1:
        zh = f"找到{len(answers)}笔，按接近程度排列；区别在：" + "、".join(
            _LABEL[k][0] for k in differ
        )
        en = f"{len(answers)} matches, best first; they differ in: " + ", ".join(
            _LABEL[k][1] for k in differ
        )
        console.print(escape(zh if first == 0 else en))
        console.print(escape(en if first == 0 else zh), style="dim")
    for n, a in enumerate(answers, 1):
        title = f"{n}. " + _title(a.match, differ, lang)
        if not a.lines:
            console.print(Panel("(no finding)", title=escape(title)))
            continue
        body = [escape(pair[first]) for pair in a.lines]
        body.append("")
        body += [f"[dim]{escape(pair[1 - first])}[/dim]" for pair in a.lines]
        console.print(Panel("\n".join(body), title=escape(title), title_align="left"))
    if more:
        console.print(
            escape(
                f"超过{MAX_MATCHES}笔，只列出前{MAX_MATCHES}笔："
                "请加上 --amount 或 --around 缩小范围"
                if first == 0
                else f"more than {MAX_MATCHES} matches, the first {MAX_MATCHES} shown: narrow"
                " with --amount or --around"
            )
        )
    for refusal, receipt in refused:
        d = _refused_doc(refusal, receipt)
        console.print(Panel("\n".join(_refused_lines(d)), title=escape(_refused_title(d))))


def _refused_doc(refusal: Refusal, body: dict[str, Any]) -> dict[str, Any]:
    """A refused receipt as lookup shows it; `still_on_terminal` when the whole batch was
    refused (no ack moved, the terminal keeps resending it)."""
    return {
        "kind": "refused",
        "quarantine_id": refusal.id,
        "reason": refusal.reason,
        "detail": refusal.detail,
        "dev": refusal.dev,
        "epoch": refusal.epoch,
        "seq": refusal.seq,
        "refused_at": refusal.last_at,
        "still_on_terminal": refusal.seq is None,
        "receipt": body,
    }


def _refused_title(d: dict[str, Any]) -> str:
    amt = d["receipt"].get("amt")
    amount = f" · {yuan(amt)}" if isinstance(amt, int) else ""
    return f"采集端拒收 refused by the collector · {d['reason']}{amount}"


def _refused_lines(d: dict[str, Any]) -> list[str]:
    b = d["receipt"]
    at = datetime.fromtimestamp(d["refused_at"], BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    where = "its whole batch" if d["still_on_terminal"] else f"seq {d['epoch']}/{d['seq']}"
    lines = [
        f"merchant {b.get('mid')} terminal {b.get('tid')} batch {b.get('bat')} trace"
        f" {b.get('trc')} rrn {b.get('rrn')} card {b.get('pan')} {b.get('typ')} {b.get('st')}",
        f"device {d['dev']}, {where}, refused {at}: {d['detail']}",
    ]
    if d["still_on_terminal"]:
        lines += [
            f"整批上传被拒收（{d['reason']}），未确认；凭条仍在终端上，终端会继续重传。",
            f"The whole upload was refused ({d['reason']}) and not acked: the receipt is still"
            " on the terminal, which keeps resending it.",
        ]
    else:
        lines += [
            f"主机已收到此凭条，但采集器拒收（{d['reason']}）；终端已获确认并删除，隔离区是唯一记录。",
            f"The host received this receipt but refused it ({d['reason']}); the terminal was"
            " acked and deleted it, so the quarantine row is its only copy.",
        ]
    lines.append(f"  daozhang quarantine show {d['quarantine_id']}")
    return [escape_text(x) for x in lines]


def escape_text(text: str) -> str:
    from rich.markup import escape

    return escape(text)
