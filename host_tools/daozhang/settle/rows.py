"""The three row kinds of a settlement file and the checks every field must pass.

Each field is parsed by a small converter that raises `ValueError` with what it expected;
the importer turns that into "file, line, field" for the user. Amounts become integer fen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

TXN_TYPES = (
    "sale",
    "void",
    "refund",
    "preauth",
    "preauth_void",
    "preauth_done",
    "preauth_done_void",
)
DIRECTIONS = ("in", "out", "frozen", "unfrozen", "refund")
SETTLE_TYPES = ("T1", "D1", "D0")
CHECK_FLAGS = ("Y", "B", "L")
PAYOUT_STATES = ("paid", "in_progress", "failed", "bounced", "frozen")
MERCHANT_STATUSES = ("active", "frozen", "closed")

Converter = Callable[[str], Any]


def pattern(regex: str, what: str, optional: bool = False) -> Converter:
    compiled = re.compile(regex)

    def convert(text: str) -> str:
        if optional and text == "":
            return ""
        if not compiled.fullmatch(text):
            raise ValueError(f"expected {what}")
        return text

    return convert


def choice(values: tuple[str, ...], optional: bool = False) -> Converter:
    def convert(text: str) -> str:
        if optional and text == "":
            return ""
        if text not in values:
            raise ValueError(f"expected one of {', '.join(values)}")
        return text

    return convert


def date_text(text: str) -> str:
    try:
        return datetime.strptime(text, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        raise ValueError("expected a date YYYY-MM-DD") from None


def beijing_time(text: str) -> int:
    """`YYYY-MM-DD HH:MM:SS` in Beijing time to unix seconds."""
    try:
        naive = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ValueError("expected a time YYYY-MM-DD HH:MM:SS (Beijing)") from None
    return int(naive.replace(tzinfo=BEIJING).timestamp())


def yuan(text: str, signed: bool = False) -> int:
    """`123.45` yuan to 12345 fen, exactly: no float ever touches money."""
    if not re.fullmatch(r"-?\d{1,13}(\.\d{1,2})?", text):
        raise ValueError("expected an amount in yuan with at most 2 decimals, e.g. 12.30")
    try:
        fen = int(Decimal(text) * 100)
    except InvalidOperation:
        raise ValueError("expected an amount in yuan") from None
    if fen < 0 and not signed:
        raise ValueError("expected a non-negative amount")
    return fen


def signed_yuan(text: str) -> int:
    return yuan(text, signed=True)


def optional_yuan(text: str) -> int | None:
    return None if text == "" else yuan(text)


def rate(text: str) -> str:
    if not re.fullmatch(r"0(\.\d{1,6})?|1(\.0{1,6})?", text):
        raise ValueError("expected a rate between 0 and 1, e.g. 0.0060")
    return text


def optional_rate(text: str) -> str:
    return "0" if text == "" else rate(text)


MID = pattern(r"[0-9A-Za-z]{15}", "a 15-character merchant id")
TID = pattern(r"[0-9A-Za-z]{8}", "an 8-character terminal id")
SIX_DIGITS = pattern(r"\d{6}", "6 digits")
RRN = pattern(r"[0-9A-Za-z]{12}", "a 12-character RRN")
OPT_RRN = pattern(r"[0-9A-Za-z]{12}", "a 12-character RRN or nothing", optional=True)
CARD = pattern(r"\d{6}\*{3,9}\d{4}", "a masked PAN like 622848******1234", optional=True)
ACCOUNT = pattern(r"[0-9*]{0,32}", "a masked bank account (digits and *)")
PAYOUT_ID = pattern(r"[0-9A-Za-z_-]{1,32}", "a payout id (letters, digits, _ -)")
OPT_PAYOUT_ID = pattern(r"[0-9A-Za-z_-]{1,32}", "a payout id or nothing", optional=True)
TEXT = pattern(r"[^\x00-\x1f]{0,200}", "text without control characters")

# column -> (row key, converter); the order is the documented column order.
DETAIL: dict[str, tuple[str, Converter]] = {
    "settle_date": ("settle_date", date_text),
    "merchant_id": ("mid", MID),
    "terminal_id": ("tid", TID),
    "txn_time": ("txn_time", beijing_time),
    "txn_type": ("typ", choice(TXN_TYPES)),
    "channel": ("ch", choice(("card", "qr"))),
    "batch_no": ("bat", SIX_DIGITS),
    "trace_no": ("trc", SIX_DIGITS),
    "rrn": ("rrn", RRN),
    "orig_rrn": ("orrn", OPT_RRN),
    "card_masked": ("pan", CARD),
    "card_kind": ("ck", choice(("D", "C", "U"), optional=True)),
    "amount": ("amt", yuan),
    "fee": ("fee", signed_yuan),
    "settle_amount": ("settle_amt", signed_yuan),
    "fund_direction": ("direction", choice(DIRECTIONS)),
    "settle_type": ("settle_type", choice(SETTLE_TYPES)),
    "check_flag": ("check_flag", choice(CHECK_FLAGS)),
    "payout_id": ("payout_id", OPT_PAYOUT_ID),
}

PAYOUT: dict[str, tuple[str, Converter]] = {
    "payout_id": ("payout_id", PAYOUT_ID),
    "merchant_id": ("mid", MID),
    "settle_type": ("settle_type", choice(SETTLE_TYPES)),
    "settle_date": ("settle_date", date_text),
    "plan_amount": ("plan_fen", yuan),
    "fee_total": ("fee_fen", yuan),
    "suspend_amount": ("suspend_fen", yuan),
    "retained_amount": ("retained_fen", yuan),
    "real_amount": ("real_fen", yuan),
    "state": ("state", choice(PAYOUT_STATES)),
    "fail_reason": ("fail_reason", TEXT),
    "bank_account_masked": ("bank_account", ACCOUNT),
}

MERCHANTS: dict[str, tuple[str, Converter]] = {
    "merchant_id": ("mid", MID),
    "acquirer_code": ("acquirer", pattern(r"[0-9A-Za-z_-]{1,16}", "an acquirer code")),
    "fee_rate": ("fee_rate", rate),
    "debit_cap": ("debit_cap_fen", optional_yuan),
    "d0_surcharge": ("d0_surcharge", optional_rate),
    "settle_type": ("settle_type", choice(SETTLE_TYPES)),
    "bank_account_masked": ("bank_account", ACCOUNT),
    "status": ("status", choice(MERCHANT_STATUSES)),
}

KINDS: dict[str, dict[str, tuple[str, Converter]]] = {
    "detail": DETAIL,
    "payout": PAYOUT,
    "merchants": MERCHANTS,
}


def fen_to_yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"
