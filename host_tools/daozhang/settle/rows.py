"""The three row kinds of a settlement file and the checks every field must pass.

Each field is parsed by a small converter that raises `ValueError` with what it expected;
the importer turns that into "file, line, field" for the user. Amounts become integer fen.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from daozhang.contract import SETTLE_MODES, TXN_TYPES
from daozhang.units import BEIJING

SETTLE_TYPES = SETTLE_MODES  # a detail row's settle_type is the receipt's `sm`

DIRECTIONS = ("in", "out", "frozen", "unfrozen", "refund")
CHECK_FLAGS = ("Y", "B", "L")
PAYOUT_STATES = ("paid", "in_progress", "failed", "bounced", "frozen")
MERCHANT_STATUSES = ("active", "frozen", "closed")

Converter = Callable[[str], Any]


def ascii_digits_only(text: str) -> None:
    """Only ASCII 0-9 are digits: Python's `\\d`, `int`, `Decimal` and `strptime` also take
    full-width (１２) and Arabic-Indic (١٢) digits, which a file must not smuggle into an RRN or
    an amount that then never matches a receipt."""
    if text.isascii():
        return  # the usual cell, checked at C speed
    for ch in text:
        if ch.isdigit() and not ch.isascii():
            raise ValueError(f"non-ASCII digit {ch!r} (U+{ord(ch):04X}): only ASCII 0-9 are digits")


def pattern(regex: str, what: str, optional: bool = False) -> Converter:
    compiled = re.compile(regex, re.ASCII)

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
    if not re.fullmatch(r"-?\d{1,13}(\.\d{1,2})?", text, re.ASCII):
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
    if not re.fullmatch(r"0(\.\d{1,6})?|1(\.0{1,6})?", text, re.ASCII):
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


def _days(text: str) -> int:
    if text == "":
        return 0
    if not re.fullmatch(r"\d{1,3}", text, re.ASCII) or int(text) > 365:
        raise ValueError("expected a number of days 0-365")
    return int(text)


def _optional_date(text: str) -> str:
    return "" if text == "" else date_text(text)


def _terminals(text: str) -> str:
    tids = text.replace(";", " ").replace("|", " ").split()
    for tid in tids:
        TID(tid)
    return " ".join(tids)


# Columns a file of that kind may carry; absent or empty means "not set" (DESIGN §2.3):
# the merchant's delayed settlement in working days (延时结算), its reserve (a rate of each
# payout, released on a date), and the terminal numbers registered for it (space- or
# ;-separated).
OPTIONAL: dict[str, dict[str, tuple[str, Converter]]] = {
    "merchants": {
        "delay_days": ("delay_days", _days),
        "reserve_rate": ("reserve_rate", optional_rate),
        "reserve_release": ("reserve_release", _optional_date),
        "terminal_ids": ("terminals", _terminals),
    }
}

# Columns of free text, where any character (a full-width digit in a name) is fine.
FREE_TEXT = frozenset({"fail_reason", "merchant_name"})


def check_detail(row: dict[str, Any]) -> tuple[str, str] | None:
    """(field, why) when a converted detail row's amounts do not add up, else None.

    A settled row (`Y`, `L`) pays `amount - fee` in, or `-amount - fee` out (refund, out:
    the fee is negative when the acquirer returns it); a row not settled (`B`) pays nothing.
    """
    amt, fee, net = row["amt"], row["fee"], row["settle_amt"]
    if row["check_flag"] == "B":
        expected, how = 0, "0 (check_flag B: not settled)"
    elif row["direction"] in ("out", "refund"):
        expected, how = -amt - fee, f"-amount - fee = {-amt - fee} fen"
    else:
        expected, how = amt - fee, f"amount - fee = {amt - fee} fen"
    if net != expected:
        return "settle_amount", f"{net} fen, expected {how}"
    return None


def adds_up(flag: str, direction: str, amt: int, fee: int, net: int) -> bool:
    """`check_detail`'s rule for one row's values: True when they add up (the block
    converters' fast check; a block that fails it is converted row by row for the message)."""
    if flag == "B":
        return net == 0
    if direction in ("out", "refund"):
        return net == -amt - fee
    return net == amt - fee


KINDS: dict[str, dict[str, tuple[str, Converter]]] = {
    "detail": DETAIL,
    "payout": PAYOUT,
    "merchants": MERCHANTS,
}
