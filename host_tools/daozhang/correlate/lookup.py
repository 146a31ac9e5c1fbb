"""`daozhang lookup`: one transaction for support staff on the phone with a merchant.

By RRN, or by "card ending 1234, ¥3,000, yesterday afternoon": `--card-last4 1234 --amount
3000 --around "2025-01-06 15:00"`. Correlation runs over the whole store (acquirer_side
needs every merchant), then only the matching findings are shown.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal, InvalidOperation

from daozhang.correlate.classify import Finding
from daozhang.correlate.cli import add_common, parse_time
from daozhang.correlate.engine import analyse
from daozhang.correlate.render import to_dict
from daozhang.errors import UsageError
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


def run(args: argparse.Namespace) -> int:
    by_card = args.card_last4 is not None or args.amount is not None or args.around is not None
    if bool(args.rrn) == by_card:
        raise UsageError("lookup: give --rrn, or --card-last4 with --amount and --around")
    if by_card and not (args.card_last4 and args.amount and args.around):
        raise UsageError("lookup: --card-last4, --amount and --around go together")
    as_of = parse_time(args.as_of, "--as-of")
    with open_store(args.db) as store:
        result = analyse(store, as_of, policy_file=args.policy, calendar_file=args.calendar)
    if args.rrn:
        hits = [f for f in result.findings if f.kind == "transaction" and f.rrn == args.rrn]
    else:
        if not (len(args.card_last4) == 4 and args.card_last4.isdigit()):
            raise UsageError(f"--card-last4: expected 4 digits, got {args.card_last4!r}")
        around = parse_time(args.around, "--around")
        assert around is not None
        fen, span = _fen(args.amount), args.window * 3600
        keys = {(r.mid, r.tid, r.bat, r.trc) for r in result.data.receipts
                if r.pan and r.pan.endswith(args.card_last4) and r.amt == fen
                and r.lt is not None and abs(r.lt - around) <= span}  # fmt: skip
        keys |= {(d.mid, d.tid, d.bat, d.trc) for d in result.data.all_detail()
                 if d.pan.endswith(args.card_last4) and d.amt == fen
                 and abs(d.txn_time - around) <= span}  # fmt: skip
        hits = [f for f in result.findings
                if f.kind == "transaction" and (f.mid, f.tid, f.bat, f.trc) in keys]  # fmt: skip
    _show(hits, args.json)
    return 0 if hits else 1


def _show(hits: list[Finding], as_json: bool) -> None:
    docs = [to_dict(f) for f in hits]
    if as_json:
        print(json.dumps(docs, ensure_ascii=False, indent=1))
        return
    from rich.console import Console
    from rich.panel import Panel

    console = Console()
    if not docs:
        console.print("no matching transaction (widen --window, or check the amount)")
    for d in docs:
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
