"""What the money page asks correlation, in one place: `analysed` (every finding as of a time)
and `lookup` (the findings and refused receipts one support question names).

Both call today's API, `correlate.engine.analyse`, which classifies the whole store
(acquirer_side compares merchants, so one merchant's findings need everyone's rows). A scoped
lookup that reads only the rows a question names belongs in `correlate/data.py`; when it
exists, `lookup` switches to it here and the pages stay as they are.

Questions support staff are asked on the phone (`Query.by`):
- `rrn`: the retrieval reference number on the slip (12 digits);
- `terminal`: terminal number (8) and trace number (6), any batch;
- `merchant`: merchant number (15) and the sale's day (Beijing);
- `amount`: amount in yuan and a time (Beijing), within a window of hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from daozhang.collector.quarantine_read import Refusal, refused_receipts
from daozhang.console.reading import Reading
from daozhang.contract import RECEIPT_INTS
from daozhang.correlate.classify import Finding
from daozhang.correlate.engine import Result, analyse
from daozhang.errors import UsageError
from daozhang.store import Store
from daozhang.units import BEIJING

KINDS = ("rrn", "terminal", "merchant", "amount")
DEFAULT_WINDOW_H = 2.0


@dataclass(frozen=True)
class Query:
    by: str
    rrn: str = ""
    tid: str = ""
    trc: str = ""
    mid: str = ""
    day: date | None = None
    fen: int = 0
    around: int = 0
    window_s: int = 0

    def matches(self, rrn: Any, mid: Any, tid: Any, trc: Any, amt: Any, lt: Any) -> bool:
        """The same question asked of a finding or of a refused receipt's body."""
        if self.by == "rrn":
            return bool(rrn == self.rrn and rrn)
        if self.by == "terminal":
            return bool(tid == self.tid and trc == self.trc)
        if not isinstance(lt, int):
            return False
        if self.by == "merchant":
            return bool(mid == self.mid and datetime.fromtimestamp(lt, BEIJING).date() == self.day)
        return bool(amt == self.fen and abs(lt - self.around) <= self.window_s)


def _digits(form: Mapping[str, str], key: str, n: int, label: str) -> str:
    value = (form.get(key) or "").strip()
    if not (len(value) == n and value.isascii() and value.isdigit()):
        zh, en = label.split(" ", 1)
        raise UsageError(f"{zh}应为{n}位数字 {en}: {n} digits, got {value!r}")
    return value


def _alnum(form: Mapping[str, str], key: str, n: int, label: str) -> str:
    value = (form.get(key) or "").strip()
    if not (len(value) == n and value.isascii() and value.isalnum()):
        zh, en = label.split(" ", 1)
        raise UsageError(f"{zh}应为{n}位 {en}: {n} letters or digits, got {value!r}")
    return value


def _fen(text: str) -> int:
    """Yuan as the merchant says it ("3000", "¥3,000", "29.90") to fen."""
    wrong = UsageError(f"金额格式不对 amount: yuan like 3000 or 29.90, got {text!r}")
    try:
        value = Decimal(text.strip().replace(",", "").lstrip("¥"))
    except InvalidOperation:
        raise wrong from None
    fen = value * 100 if value.is_finite() else Decimal(-1)
    if fen <= 0 or fen != fen.to_integral_value() or fen > RECEIPT_INTS["amt"]:
        raise wrong
    return int(fen)


def _time(text: str) -> int:
    try:
        when = datetime.strptime(text.strip().replace("T", " "), "%Y-%m-%d %H:%M")
    except ValueError:
        raise UsageError(
            f"时间格式应为 YYYY-MM-DD HH:MM time: YYYY-MM-DD HH:MM (Beijing), got {text!r}"
        ) from None
    return int(when.replace(tzinfo=BEIJING).timestamp())


def parse_query(form: Mapping[str, str]) -> Query:
    """A lookup form's fields as a `Query`; UsageError (its message in Chinese and English)
    when a field is missing or malformed."""
    by = form.get("by", "")
    if by == "rrn":
        return Query(by, rrn=_digits(form, "rrn", 12, "参考号 RRN"))
    if by == "terminal":
        tid = _alnum(form, "tid", 8, "终端号 terminal")
        return Query(by, tid=tid, trc=_digits(form, "trc", 6, "凭证号 trace"))
    if by == "merchant":
        mid = _alnum(form, "mid", 15, "商户号 merchant")
        try:
            day = date.fromisoformat((form.get("day") or "").strip())
        except ValueError:
            raise UsageError(
                f"日期格式应为 YYYY-MM-DD day: YYYY-MM-DD, got {form.get('day')!r}"
            ) from None
        return Query(by, mid=mid, day=day)
    if by == "amount":
        try:
            hours = float(form.get("window") or DEFAULT_WINDOW_H)
        except ValueError:
            hours = -1.0
        if not 0 < hours <= 72:
            raise UsageError(
                f"时间范围应为0-72小时 window: 0 to 72 hours, got {form.get('window')!r}"
            )
        return Query(
            by,
            fen=_fen(form.get("amount") or ""),
            around=_time(form.get("around") or ""),
            window_s=int(hours * 3600),
        )
    raise UsageError(f"未知查询方式 unknown lookup {by!r}: one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Found:
    as_of: int
    findings: list[Finding]
    refused: list[tuple[Refusal, dict[str, Any]]]


def analysed(store: Store, as_of: float, device: str | None = None) -> Result:
    """Every finding as of `as_of` (today: the whole store, classified), or one device's;
    read without the write lock (`reading.Reading`)."""
    return analyse(Reading(store), as_of=as_of, device=device)


def lookup(store: Store, query: Query, as_of: float) -> Found:
    """The transactions a support question names, and any receipt the collector refused
    that it names (a refused record is in no finding: without it support would say "no such
    sale" about a receipt that did reach the host)."""
    result = analysed(store, as_of)
    hits = [
        f
        for f in result.findings
        if f.kind == "transaction" and query.matches(f.rrn, f.mid, f.tid, f.trc, f.amount_fen, f.lt)
    ]
    refused = [
        (q, body)
        for q, body in refused_receipts(store)
        if query.matches(
            body.get("rrn"),
            body.get("mid"),
            body.get("tid"),
            body.get("trc"),
            body.get("amt"),
            body.get("lt"),
        )
    ]
    hits.sort(key=lambda f: f.lt or 0, reverse=True)
    return Found(result.as_of, hits, refused)
