"""`daozhang lookup`: one transaction for support staff on the phone with a merchant.

By RRN, or by "card ending 1234, ¥3,000, yesterday afternoon": `--card-last4 1234 --amount
3000 --around "2025-01-06 15:00"`. Correlation runs over the whole store (acquirer_side
needs every merchant), then only the matching findings are shown. Receipts the collector
refused (quarantine) are searched too: a refused record is in no finding, and without it
support would be told "no such transaction" about a receipt that did reach the host.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from daozhang.collector.quarantine_read import Refusal, refused_receipts
from daozhang.correlate.classify import Finding
from daozhang.correlate.cli import add_common, note_unstored, parse_time
from daozhang.correlate.engine import analyse
from daozhang.correlate.render import to_dict
from daozhang.errors import UsageError
from daozhang.settle.rows import BEIJING
from daozhang.store import open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument("--rrn", help="retrieval reference number (12)")
    parser.add_argument("--card-last4", help="last four digits of the card")
    parser.add_argument("--amount", help="amount in yuan, e.g. 3000 or 29.90")
    parser.add_argument("--around", help='"YYYY-MM-DD HH:MM" Beijing time')
    parser.add_argument("--window", type=float, default=6.0, help="hours either side (6)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _fen(text: str) -> int:
    try:
        value = Decimal(text.replace(",", "").lstrip("¥"))
    except InvalidOperation:
        raise UsageError(f"--amount: expected yuan like 3000 or 29.90, got {text!r}") from None
    return int(value * 100)


@dataclass(frozen=True)
class CardQuery:
    """What a merchant on the phone can say: card ending 1234, ¥3,000, around 15:00."""

    last4: str
    fen: int
    around: float
    span_s: float

    def matches(self, pan: object, amt: object, when: object) -> bool:
        return (
            isinstance(pan, str)
            and pan.endswith(self.last4)
            and amt == self.fen
            and isinstance(when, (int, float))
            and abs(when - self.around) <= self.span_s
        )


def _card_query(args: argparse.Namespace) -> CardQuery:
    if not (len(args.card_last4) == 4 and args.card_last4.isdigit()):
        raise UsageError(f"--card-last4: expected 4 digits, got {args.card_last4!r}")
    around = parse_time(args.around, "--around")
    assert around is not None
    return CardQuery(args.card_last4, _fen(args.amount), around, args.window * 3600)


def _body_matcher(rrn: str | None, card: CardQuery | None) -> Callable[[dict[str, Any]], bool]:
    """The same question asked of a receipt body as the device sent it (refused receipts)."""

    def matches(body: dict[str, Any]) -> bool:
        if card is None:
            return body.get("rrn") == rrn
        return card.matches(body.get("pan"), body.get("amt"), body.get("lt"))

    return matches


def run(args: argparse.Namespace) -> int:
    by_card = args.card_last4 is not None or args.amount is not None or args.around is not None
    if bool(args.rrn) == by_card:
        raise UsageError("lookup: give --rrn, or --card-last4 with --amount and --around")
    if by_card and not (args.card_last4 and args.amount and args.around):
        raise UsageError("lookup: --card-last4, --amount and --around go together")
    as_of = parse_time(args.as_of, "--as-of")
    card = _card_query(args) if by_card else None
    matches = _body_matcher(args.rrn, card)
    with open_store(args.db) as store:
        result = analyse(store, as_of, policy_file=args.policy, calendar_file=args.calendar)
        refused = [(q, body) for q, body in refused_receipts(store) if matches(body)]
        note_unstored(store, "lookup")
    if card is None:
        hits = [f for f in result.findings if f.kind == "transaction" and f.rrn == args.rrn]
    else:
        keys = {(r.mid, r.tid, r.bat, r.trc) for r in result.data.receipts
                if card.matches(r.pan, r.amt, r.lt)}  # fmt: skip
        keys |= {(d.mid, d.tid, d.bat, d.trc) for d in result.data.all_detail()
                 if card.matches(d.pan, d.amt, d.txn_time)}  # fmt: skip
        hits = [f for f in result.findings
                if f.kind == "transaction" and (f.mid, f.tid, f.bat, f.trc) in keys]  # fmt: skip
    _show(hits, refused, args.json)
    return 0 if hits or refused else 1


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


def _show(
    hits: list[Finding], refused: list[tuple[Refusal, dict[str, Any]]], as_json: bool
) -> None:
    docs = [to_dict(f) for f in hits] + [_refused_doc(q, body) for q, body in refused]
    if as_json:
        print(json.dumps(docs, ensure_ascii=False, indent=1))
        return
    from rich.console import Console
    from rich.panel import Panel

    console = Console()
    if not docs:
        console.print("no matching transaction (widen --window, or check the amount)")
    for d in docs:
        if d["kind"] == "refused":
            console.print(Panel("\n".join(_refused_lines(d)), title=_refused_title(d)))
            continue
        head = (f"{d['status']}" + (f" · {d['cause']}" if d.get("cause") else "")
                + f" · receipt {d['data']} · ¥{d['amount_fen'] / 100:.2f}")  # fmt: skip
        lines = [
            f"merchant {d['mid']} terminal {d['tid']} batch {d['bat']} trace {d['trc']}"
            f" rrn {d['rrn']} device {d['dev']} at {d['txn_time']}",
            f"expected {d['expected_date']}, paid ¥{d['paid_fen'] / 100:.2f}, short "
            f"¥{d['short_fen'] / 100:.2f}, confidence {d['confidence']}",
            d["explain"]["zh"],
            d["explain"]["en"],
            *(f"  [{e['source']}] {e['fact']}" for e in d["evidence"]),
        ]
        console.print(Panel("\n".join(lines), title=head))


def _refused_title(d: dict[str, Any]) -> str:
    amt = d["receipt"].get("amt")
    amount = f" · ¥{amt / 100:.2f}" if isinstance(amt, int) else ""
    return f"refused by the collector · {d['reason']}{amount}"


def _refused_lines(d: dict[str, Any]) -> list[str]:
    b = d["receipt"]
    when = datetime.fromtimestamp(d["refused_at"], BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    where = "its whole batch" if d["still_on_terminal"] else f"seq {d['epoch']}/{d['seq']}"
    lines = [
        f"merchant {b.get('mid')} terminal {b.get('tid')} batch {b.get('bat')} trace"
        f" {b.get('trc')} rrn {b.get('rrn')} card {b.get('pan')} {b.get('typ')} {b.get('st')}",
        f"device {d['dev']}, {where}, refused {when}: {d['detail']}",
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
    return lines
