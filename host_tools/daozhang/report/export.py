"""JSON (DESIGN §2.2 shape) and CSV (one row per finding, amounts in yuan; the codes, then
their names from `words.py` in the chosen language in the last columns, so that existing
readers of the columns keep working)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from daozhang import words
from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.correlate.render import to_dict
from daozhang.correlate.render_fast import Renderer, yuan_text
from daozhang.units import BEIJING
from daozhang.words import label


def as_of_text(as_of: int) -> str:
    return datetime.fromtimestamp(as_of, BEIJING).strftime("%Y-%m-%d %H:%M:%S+08:00")


def document(as_of: int, findings: list[Finding]) -> dict[str, Any]:
    return {"as_of": as_of_text(as_of), "findings": [to_dict(f) for f in findings]}


class JsonFile:
    """The document of `document()`, written one finding at a time: a million findings as one
    string took gigabytes (issue 24). One finding per line, so that `grep` and `jq` work."""

    def __init__(self, path: Path, as_of: int, renderer: Renderer | None = None) -> None:
        self.out = path.open("w", encoding="utf-8")
        self.out.write('{"as_of": ' + json.dumps(as_of_text(as_of)) + ', "findings": [')
        self.n = 0
        self.renderer = renderer or Renderer()

    def add(
        self,
        findings: Sequence[Finding],
        texts: Sequence[tuple[str, str]] = (),
        lines: Sequence[str] = (),
    ) -> None:
        """These findings written (`texts`: their explanations, `lines`: their JSON text,
        when already made); else made 2,000 at a time, a few MB, not a chunk's worth."""
        r = self.renderer
        for i in range(0, len(findings), 2_000):
            part = lines[i : i + 2_000]
            if not part:
                some = findings[i : i + 2_000]
                said = texts[i : i + 2_000] or [r.explain(f) for f in some]
                part = [r.json_line(f, zh, en) for f, (zh, en) in zip(some, said, strict=True)]
            self.out.write(",\n " if self.n else "\n ")
            self.out.write(",\n ".join(part))
            self.n += len(part)

    def close(self) -> None:
        self.out.write("\n]}\n")
        self.out.close()


def write_json(path: Path, as_of: int, findings: Iterable[Finding]) -> None:
    out = JsonFile(path, as_of)
    out.add(list(findings))
    out.close()


CSV_COLUMNS = ("kind", "mid", "tid", "bat", "trc", "dev", "rrn", "payout_id", "amount_yuan",
               "status", "cause", "data", "network_caused", "expected_date", "paid_yuan",
               "short_yuan", "confidence", "explain_zh", "explain_en",
               "status_name", "cause_name", "data_name")  # fmt: skip


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_CHARS = frozenset(_FORMULA_START)
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

    def __init__(self, path: Path, lang: str = "zh", renderer: Renderer | None = None) -> None:
        self.out = path.open("w", newline="", encoding="utf-8-sig")  # BOM: Excel reads UTF-8
        csv.writer(self.out).writerow(CSV_COLUMNS)
        self.lang = lang
        self.renderer = renderer or Renderer()
        # Fields that repeat, made once as CSV text: ids (merchant, terminal, batch, device,
        # payout), and the codes with their names.
        self._ids: dict[tuple[str, str, str, str, str], tuple[str, ...]] = {}
        self._codes: dict[tuple[str, str, str, str], tuple[str, str]] = {}

    def add(self, findings: Sequence[Finding], texts: Sequence[tuple[str, str]] = ()) -> None:
        """These findings written (`texts`: their explanations, when already made). Each
        line is written as csv.writer writes its row (tests/correlate/test_render_fast.py):
        a field quoted when it holds a comma, a quote or a line break, its quotes doubled."""
        texts = texts or [self.renderer.explain(f) for f in findings]
        ids, codes, yuan, lines = self._ids, self._codes, yuan_text, []
        if len(ids) > 5_000:  # a chunk's terminals and payouts; they do not recur later
            ids.clear()
        for f, (zh, en) in zip(findings, texts, strict=True):
            key = (f.mid, f.tid, f.bat, f.dev, f.payout_id)
            where = ids.get(key)
            if where is None:
                where = ids[key] = tuple(_field(id_cell(str(cell(v)))) for v in key)
            named = codes.get((f.kind, f.status, f.cause, f.data))
            if named is None:
                named = codes[(f.kind, f.status, f.cause, f.data)] = self._named(f)
            day = f.expected_date
            confidence = round(f.confidence, 2) if f.kind == "transaction" else f.confidence
            lines.append(
                f"{_field(f.kind)},{where[0]},{where[1]},{where[2]},{_id_field(f.trc)},{where[3]},"
                f"{_id_field(f.rrn)},{where[4]},{yuan(f.amount_fen)},{named[0]},"
                f"{day.isoformat() if day else ''},{yuan(f.paid_fen)},{yuan(f.short_fen)},"
                f"{confidence if type(confidence) is float else _field(confidence)},"
                f"{_field(zh if zh[:1] not in _FORMULA_CHARS else cell(zh))},"
                f"{_field(en if en[:1] not in _FORMULA_CHARS else cell(en))},{named[1]}\r\n"
            )
            if len(lines) == 2_000:  # a few hundred KB a write
                self.out.write("".join(lines))
                lines = []
        self.out.write("".join(lines))

    def _named(self, f: Finding) -> tuple[str, str]:
        """The status, cause, data and network cells, and the names of the codes (`lang`),
        escaped like any cell, as CSV text."""
        transaction = f.kind == "transaction"
        network = transaction and f.cause in NETWORK_CAUSES
        codes = (f.status, f.cause, f.data if transaction else "", network)
        names = (label(words.STATUS, f.status, self.lang), label(words.CAUSE, f.cause, self.lang),
                 label(words.DATA, f.data, self.lang) if transaction else "")  # fmt: skip
        return ",".join(_field(cell(v)) for v in codes), ",".join(_field(cell(v)) for v in names)

    def close(self) -> None:
        self.out.close()


def _field(value: object) -> str:
    """A value as csv.writer writes it (the default dialect, minimal quoting)."""
    text = "" if value is None else value if type(value) is str else str(value)
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


def _id_field(value: str) -> str:
    """_field(id_cell(str(cell(value)))), quicker for the ids that seldom repeat (trace, RRN)."""
    if type(value) is str and value.isdigit() and value.isascii():
        return '"=""' + value + '"""'  # digits: no formula to escape, kept as text
    return _field(id_cell(str(cell(value))))


def write_csv(path: Path, findings: Iterable[Finding], lang: str = "zh") -> None:
    out = CsvFile(path, lang)
    out.add(list(findings))
    out.close()
