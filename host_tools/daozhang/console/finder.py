"""What the money page asks correlation, in one place: `analysed` (every finding as of a time)
and `lookup` (the findings and refused receipts one support question names).

`lookup` asks what `daozhang lookup` asks (`correlate.lookup.look_up`: search, then only the
matches classified, then the refused receipts that fit), so the page and the command can
never disagree and neither reads the whole store. `analysed` classifies the whole store a
merchant range at a time (`correlate.engine.analyse_chunks`, the same findings as the
in-memory run): the money page sums every finding and keeps only the problems.

Questions support staff are asked on the phone (the form's `by`), each a `correlate.search`
question, with the same fields as `daozhang lookup` (commands/lookup.py):
- `rrn`: the retrieval reference number on the slip (12 letters or digits);
- `terminal`: terminal number (8) and trace number (凭证号, up to 6 digits), the day if given;
- `merchant`: merchant number (15) and the sale's day (Beijing), the amount and the card's
  last four digits if given;
- `amount`: amount in yuan and a time (Beijing), within a window of hours, the card's last
  four digits if given;
- `order`: a QR or wallet sale's order number (商户订单号, up to 64 characters).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from daozhang.collector.quarantine_read import Refusal
from daozhang.console.reading import Reading
from daozhang.contract import RECEIPT_INTS
from daozhang.correlate.classify import Finding
from daozhang.correlate.engine import analyse_chunks
from daozhang.correlate.lookup import look_up
from daozhang.correlate.search import Query, day_range
from daozhang.correlate.stream import Chunk
from daozhang.errors import UsageError
from daozhang.store import Store
from daozhang.units import BEIJING

KINDS = ("rrn", "terminal", "merchant", "amount", "order")
DEFAULT_WINDOW_H = 2.0


def _digits(form: Mapping[str, str], key: str, n: int, label: str) -> str:
    value = (form.get(key) or "").strip()
    if not (len(value) == n and value.isascii() and value.isdigit()):
        zh, en = label.split(" ", 1)
        raise UsageError(f"{zh}应为{n}位数字 {en}: {n} digits, got {value!r}")
    return value


def _optional(form: Mapping[str, str], key: str) -> str | None:
    return (form.get(key) or "").strip() or None


def _last4(form: Mapping[str, str]) -> str | None:
    if _optional(form, "last4") is None:
        return None
    return _digits(form, "last4", 4, "卡号后四位 card's last four")


def _day(text: str | None) -> tuple[int, int]:
    try:
        return day_range(date.fromisoformat((text or "").strip()))
    except ValueError:
        raise UsageError(f"日期格式应为 YYYY-MM-DD day: YYYY-MM-DD, got {text!r}") from None


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
        return Query(rrn=_alnum(form, "rrn", 12, "参考号 RRN"))
    if by == "order":
        order = _optional(form, "order")
        if order is None or len(order) > 64 or any(c.isspace() for c in order):
            raise UsageError(
                f"订单号应为1-64个字符、不含空格 order number: 1 to 64 characters, no spaces,"
                f" got {form.get('order')!r}"
            )
        return Query(order=order)
    if by == "terminal":
        tid = _alnum(form, "tid", 8, "终端号 terminal")
        trace = (form.get("trc") or "").strip()
        if not (1 <= len(trace) <= 6 and trace.isascii() and trace.isdigit()):
            raise UsageError(f"凭证号应为1-6位数字 trace: up to 6 digits, got {trace!r}")
        lo, hi = _day(form.get("day")) if _optional(form, "day") else (None, None)
        return Query(tid=tid, trace=trace.zfill(6), lo=lo, hi=hi)
    if by == "merchant":
        mid = _alnum(form, "mid", 15, "商户号 merchant")
        lo, hi = _day(form.get("day"))
        amount = _optional(form, "amount")
        fen = _fen(amount) if amount is not None else None
        return Query(mid=mid, lo=lo, hi=hi, fen=fen, last4=_last4(form))
    if by == "amount":
        try:
            hours = float(form.get("window") or DEFAULT_WINDOW_H)
        except ValueError:
            hours = -1.0
        if not 0 < hours <= 72:
            raise UsageError(
                f"时间范围应为0-72小时 window: 0 to 72 hours, got {form.get('window')!r}"
            )
        around = _time(form.get("around") or "")
        span = int(hours * 3600)
        return Query(fen=_fen(form.get("amount") or ""), lo=around - span, hi=around + span,
                     around=around, last4=_last4(form))  # fmt: skip
    raise UsageError(f"未知查询方式 unknown lookup {by!r}: one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Found:
    as_of: int
    findings: list[Finding]  # best first (nearest the time asked about, then latest)
    refused: list[tuple[Refusal, dict[str, Any]]]
    more: bool  # more matches than shown


def analysed(store: Store, as_of: float) -> tuple[int, Iterator[Chunk]]:
    """Every finding as of `as_of` (the whole store, classified a merchant range at a time:
    use each chunk and drop it); read without the write lock (`reading.Reading`)."""
    return analyse_chunks(Reading(store), as_of=as_of)


def lookup(store: Store, query: Query, as_of: float) -> Found:
    """The transactions a support question names, and any receipt the collector refused
    that it names; read without the write lock."""
    looked = look_up(Reading(store), query, as_of)
    hits = [f for m in looked.matches if (f := looked.finding(m)) is not None]
    return Found(looked.scoped.ctx.as_of, hits, looked.refused, looked.more)
