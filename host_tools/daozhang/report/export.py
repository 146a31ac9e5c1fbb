"""JSON (DESIGN §2.2 shape) and CSV (one row per finding, amounts in yuan)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from daozhang.correlate.classify import Finding
from daozhang.correlate.render import to_dict
from daozhang.settle.rows import BEIJING, fen_to_yuan


def as_of_text(as_of: int) -> str:
    return datetime.fromtimestamp(as_of, BEIJING).strftime("%Y-%m-%d %H:%M:%S+08:00")


def document(as_of: int, findings: list[Finding]) -> dict[str, Any]:
    return {"as_of": as_of_text(as_of), "findings": [to_dict(f) for f in findings]}


def write_json(path: Path, as_of: int, findings: list[Finding]) -> None:
    path.write_text(json.dumps(document(as_of, findings), ensure_ascii=False, indent=1) + "\n")


CSV_COLUMNS = ("kind", "mid", "tid", "bat", "trc", "dev", "rrn", "payout_id", "amount_yuan",
               "status", "cause", "data", "network_caused", "expected_date", "paid_yuan",
               "short_yuan", "confidence", "explain_zh", "explain_en")  # fmt: skip


def write_csv(path: Path, findings: list[Finding]) -> None:
    with path.open("w", newline="", encoding="utf-8-sig") as out:  # BOM: Excel reads UTF-8
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for f in findings:
            d = to_dict(f)
            writer.writerow([
                f.kind, f.mid, f.tid, f.bat, f.trc, f.dev, f.rrn, f.payout_id,
                fen_to_yuan(f.amount_fen), f.status, f.cause, f.data if f.kind == "transaction"
                else "", d.get("network_caused", False),
                f.expected_date.isoformat() if f.expected_date else "",
                fen_to_yuan(f.paid_fen), fen_to_yuan(f.short_fen), d["confidence"],
                d["explain"]["zh"], d["explain"]["en"],
            ])  # fmt: skip
