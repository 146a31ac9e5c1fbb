"""JSON (DESIGN §2.2 shape) and CSV (one row per finding, amounts in yuan; the codes, then
their names from `words.py` in the chosen language in the last columns, so that existing
readers of the columns keep working)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from daozhang import words
from daozhang.correlate.classify import Finding
from daozhang.correlate.render import to_dict
from daozhang.units import BEIJING, fen_to_yuan
from daozhang.words import label


def as_of_text(as_of: int) -> str:
    return datetime.fromtimestamp(as_of, BEIJING).strftime("%Y-%m-%d %H:%M:%S+08:00")


def document(as_of: int, findings: list[Finding]) -> dict[str, Any]:
    return {"as_of": as_of_text(as_of), "findings": [to_dict(f) for f in findings]}


class JsonFile:
    """The document of `document()`, written one finding at a time: a million findings as one
    string took gigabytes (issue 24). One finding per line, so that `grep` and `jq` work."""

    def __init__(self, path: Path, as_of: int) -> None:
        self.out = path.open("w", encoding="utf-8")
        self.out.write('{"as_of": ' + json.dumps(as_of_text(as_of)) + ', "findings": [')
        self.n = 0

    def add(self, findings: Iterable[Finding], dicts: Iterable[dict[str, Any]] = ()) -> None:
        """These findings written (`dicts`: their `to_dict`, when already made)."""
        made = iter(dicts)
        for f in findings:
            d = next(made, None) or to_dict(f)
            self.out.write(",\n " if self.n else "\n ")
            self.out.write(json.dumps(d, ensure_ascii=False, separators=(",", ":")))
            self.n += 1

    def close(self) -> None:
        self.out.write("\n]}\n")
        self.out.close()


def write_json(path: Path, as_of: int, findings: Iterable[Finding]) -> None:
    out = JsonFile(path, as_of)
    out.add(findings)
    out.close()


CSV_COLUMNS = ("kind", "mid", "tid", "bat", "trc", "dev", "rrn", "payout_id", "amount_yuan",
               "status", "cause", "data", "network_caused", "expected_date", "paid_yuan",
               "short_yuan", "confidence", "explain_zh", "explain_en",
               "status_name", "cause_name", "data_name")  # fmt: skip


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: one starting like a formula (`=`, `+`, `-`, `@`)
    gets a leading `'`, so that text from an acquirer's file or a device never runs in Excel
    (CSV injection); plain numbers, negative amounts included, are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


_DIGITS = re.compile(r"[0-9]+")


def id_cell(value: str) -> str:
    """An id made of digits, as a spreadsheet keeps it: `="000123"` stays text, so a terminal
    or trace number keeps its leading zeros and a 15-digit merchant number its last digits
    (Excel reads a bare digit run as a number). Only digits ever go between the quotes."""
    return f'="{value}"' if _DIGITS.fullmatch(value) else value


class CsvFile:
    """One row per finding; the id columns kept as text, cells that would run as formulas
    escaped, the last three columns the names of the codes in `lang`."""

    def __init__(self, path: Path, lang: str = "zh") -> None:
        self.out = path.open("w", newline="", encoding="utf-8-sig")  # BOM: Excel reads UTF-8
        self.writer = csv.writer(self.out)
        self.writer.writerow(CSV_COLUMNS)
        self.lang = lang

    def add(self, findings: Iterable[Finding], dicts: Iterable[dict[str, Any]] = ()) -> None:
        """These findings written (`dicts`: their `to_dict`, when already made)."""
        lang = self.lang
        made = iter(dicts)
        for f in findings:
            d = next(made, None) or to_dict(f)
            ids = [id_cell(str(cell(v))) for v in (f.mid, f.tid, f.bat, f.trc, f.dev, f.rrn,
                                                    f.payout_id)]  # fmt: skip
            self.writer.writerow([f.kind, *ids, *map(cell, [
                fen_to_yuan(f.amount_fen), f.status, f.cause, f.data if f.kind == "transaction"
                else "", d.get("network_caused", False),
                f.expected_date.isoformat() if f.expected_date else "",
                fen_to_yuan(f.paid_fen), fen_to_yuan(f.short_fen), d["confidence"],
                d["explain"]["zh"], d["explain"]["en"], label(words.STATUS, f.status, lang),
                label(words.CAUSE, f.cause, lang),
                label(words.DATA, f.data, lang) if f.kind == "transaction" else "",
            ])])  # fmt: skip

    def close(self) -> None:
        self.out.close()


def write_csv(path: Path, findings: Iterable[Finding], lang: str = "zh") -> None:
    out = CsvFile(path, lang)
    out.add(findings)
    out.close()
