"""The payout view (report/payouts.py) as files: `correlate --payouts-json FILE` and
`--payouts-csv FILE`, one payout per line or row, for finance staff reconciling the acquirer's
payouts against the bank statement and for programs that read them.

Written a chunk (correlate/stream.py) at a time, as the findings files are: a chunk holds every
payout of its merchants whole, so each payout's sums and its transactions are complete when
written. The files are in merchant order, most missing money first within a chunk; the terminal
table (`--payouts`) is the one sorted across the whole store.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from daozhang import words
from daozhang.correlate.render import explain
from daozhang.correlate.stream import Chunk
from daozhang.report.export import as_of_text, cell, id_cell
from daozhang.report.payouts import PayoutView, views
from daozhang.units import fen_to_yuan
from daozhang.words import label


def payout_dict(v: PayoutView) -> dict[str, Any]:
    """One payout in the JSON shape: amounts in fen as the findings have them (DESIGN §2.2),
    its own finding's status, cause and explanation, and its transactions folded under it."""
    p, f = v.payout, v.finding
    d: dict[str, Any] = {
        "payout_id": p.payout_id,
        "mid": p.mid,
        "settle_date": p.settle_date,
        "settle_type": p.settle_type,
        "state": p.state,
        "fail_reason": p.fail_reason or None,
        "gross_fen": v.gross,
        "fees_fen": v.fees,
        "refunds_fen": v.refunds,
        "holds_fen": v.holds,
        "net_fen": v.net,
        "reached_fen": v.reached,
        "missing_fen": v.missing,
        "adds_up": v.adds_up,
        "n_transactions": v.n_transactions,
        "n_missing_money": v.n_bad,
        "status": f.status if f is not None else None,
        "cause": (f.cause or None) if f is not None else None,
        "explain": explain(f) if f is not None else None,
        "transactions": [
            {
                "tid": t.tid,
                "bat": t.bat,
                "trc": t.trc,
                "rrn": t.rrn or None,
                "amount_fen": t.amount_fen,
                "paid_fen": t.paid_fen,
                "status": t.status,
                "cause": t.cause or None,
            }
            for t in v.transactions
        ],
    }
    return d


class PayoutJsonFile:
    """`{"as_of": ..., "payouts": [...]}`, one payout per line (so `grep` and `jq` work)."""

    def __init__(self, path: Path, as_of: int) -> None:
        self.out = path.open("w", encoding="utf-8")
        self.out.write('{"as_of": ' + json.dumps(as_of_text(as_of)) + ', "payouts": [')
        self.n = 0

    def add_chunk(self, chunk: Chunk) -> None:
        for v in views(chunk.data, chunk.findings):
            self.out.write(",\n " if self.n else "\n ")
            self.out.write(json.dumps(payout_dict(v), ensure_ascii=False, separators=(",", ":")))
            self.n += 1

    def close(self) -> None:
        self.out.write("\n]}\n")
        self.out.close()


PAYOUT_CSV_COLUMNS = ("payout_id", "mid", "settle_date", "settle_type", "state", "gross_yuan",
                      "fees_yuan", "refunds_yuan", "holds_yuan", "net_yuan", "reached_yuan",
                      "missing_yuan", "adds_up", "transactions", "transactions_missing_money",
                      "status", "cause", "fail_reason", "explain_zh", "explain_en",
                      "state_name", "status_name", "cause_name")  # fmt: skip


class PayoutCsvFile:
    """One row per payout, amounts in yuan; ids kept as text and formula-like cells escaped as
    in the findings CSV (report/export.py); the `*_name` columns in `lang`."""

    def __init__(self, path: Path, lang: str = "zh") -> None:
        self.out = path.open("w", newline="", encoding="utf-8-sig")  # BOM: Excel reads UTF-8
        self.writer = csv.writer(self.out)
        self.writer.writerow(PAYOUT_CSV_COLUMNS)
        self.lang = lang

    def add_chunk(self, chunk: Chunk) -> None:
        lang = self.lang
        for v in views(chunk.data, chunk.findings):
            p, f = v.payout, v.finding
            status = f.status if f is not None else ""
            cause = f.cause if f is not None else ""
            said = explain(f) if f is not None else {"zh": "", "en": ""}
            self.writer.writerow([
                id_cell(str(cell(p.payout_id))), id_cell(str(cell(p.mid))), p.settle_date,
                p.settle_type, p.state, *(fen_to_yuan(x) for x in (v.gross, v.fees, v.refunds,
                v.holds, v.net, v.reached, v.missing)), "yes" if v.adds_up else "no",
                v.n_transactions, v.n_bad, status, cause, cell(p.fail_reason), said["zh"],
                said["en"], label(words.PAYOUT_STATE, p.state, lang),
                label(words.STATUS, status, lang), label(words.CAUSE, cause, lang),
            ])  # fmt: skip

    def close(self) -> None:
        self.out.close()
