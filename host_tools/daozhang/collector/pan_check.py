"""Full card numbers in what devices send: refused in records and heartbeats, masked in
whatever quarantine keeps (DESIGN §1.2: a PAN is stored masked, first 6 and last 4, or not at
all). The collector's check is deliberately wider than `security.pan`'s scan: any 13-19 digit
run passing Luhn in a text field other than `mid` is refused, whatever its first digit."""

from __future__ import annotations

import re
from collections.abc import Container
from itertools import chain
from typing import Any

from daozhang.collector.wire import WireError
from daozhang.contract import RECEIPT_IDS
from daozhang.security.pan import card_prefix, luhn_ok, mask

DIGIT_RUN = re.compile(r"\d{13,19}")
_DIGIT_RUN_BYTES = re.compile(rb"\d{13,19}")
_RUN_MIN, _RUN_MAX = 13, 19
# Every ASCII digit to b"1", every other byte to b"0": runs of digits become runs of b"1"
# that bytes.find locates at C speed.
_DIGIT_MAP = bytes(0x31 if 0x30 <= i <= 0x39 else 0x30 for i in range(256))
_LONG_ENOUGH = b"1" * _RUN_MIN


def digit_runs(raw: bytes) -> list[bytes]:
    """What `re.findall(rb"\\d{13,19}", raw)` returns, found without the regex.

    The regex restarts at every digit of every shorter run (a receipt is full of 6-12 digit
    fields), which made this scan cost as much as decoding the batch. Here bytes.find jumps
    from one run of at least 13 digits to the next; each is cut as the regex cuts it: greedy
    pieces of 19 from its start, the last kept when it has at least 13.
    """
    marks = raw.translate(_DIGIT_MAP)
    runs: list[bytes] = []
    start = marks.find(_LONG_ENOUGH)
    while start >= 0:
        end = marks.find(b"0", start)
        if end < 0:
            end = len(raw)
        if end - start <= _RUN_MAX:
            runs.append(raw[start:end])  # the usual run: one merchant id
        else:
            for piece in range(start, end - _RUN_MIN + 1, _RUN_MAX):
                runs.append(raw[piece : min(piece + _RUN_MAX, end)])
        start = marks.find(_LONG_ENOUGH, end)
    return runs


def holds_pan_like_run(raw: bytes, allowed: Container[bytes]) -> bool:
    """A C-speed scan of undecoded bytes: a Luhn-valid 13-19 digit run not in `allowed`."""
    return any(run not in allowed and luhn_ok(run.decode()) for run in digit_runs(raw))


_OTHER_DIGIT = re.compile(r"(?![0-9])\d")  # a digit of any script but ASCII's


def has_other_digits(*bodies: dict[str, Any]) -> bool:
    """Whether a value of these bodies holds digits beyond ASCII (full-width, Arabic-Indic,
    ...), which the byte scan cannot see. The values are rendered and joined at C speed
    (nested ones by their repr, which keeps such digits as they are): receipts carry ASCII
    only, and the regex runs on the rare text that is not."""
    text = "\0".join(map(str, chain.from_iterable(map(dict.values, bodies))))
    return not text.isascii() and _OTHER_DIGIT.search(text) is not None


_ASCII_RUN = re.compile(r"[0-9]+")


def id_pieces(body: dict[str, Any]) -> set[bytes]:
    """The pieces `digit_runs` cuts from digit runs longer than any card number in a
    receipt's ids (`ord`, `xid`: WeChat's and Alipay's are 28 digits): not card numbers."""
    pieces: set[bytes] = set()
    for key in RECEIPT_IDS:
        value = body.get(key)
        if type(value) is str:
            for run in _ASCII_RUN.findall(value):
                if len(run) > _RUN_MAX:
                    pieces.update(digit_runs(run.encode()))
    return pieces


def scan_for_full_pan(body: dict[str, Any], raw: bytes) -> None:
    """Only a record whose bytes hold a suspicious run, or whose texts hold other digits, gets
    the field-wise check."""
    mid = body.get("mid")
    allowed = {mid.encode() if isinstance(mid, str) else b""} | id_pieces(body)
    if holds_pan_like_run(raw, allowed) or has_other_digits(body):
        check_no_full_pan(body)


def check_no_full_pan(body: dict[str, Any], where: str = "b") -> None:
    """WireError("pan_unmasked") naming the field, with the run kept for masking; texts at any
    depth are looked at (a nested map or list hides nothing), all but the top-level `mid`."""
    for key, value in body.items():
        if where == "b" and key == "mid":
            continue
        if where == "b" and key in RECEIPT_IDS and isinstance(value, str):
            _check_id(value, f"{where}.{key}")
            continue
        _check_value(value, f"{where}.{str(key)[:20]}")


_STANDING_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


def _check_id(value: str, where: str) -> None:
    """An id is refused for a Luhn-valid run of 13-19 digits standing alone that begins as a
    card number can (security/pan.py `card_prefix`), not for a piece of a longer run (a
    28-digit WeChat id is no card number) nor for a date-led order number (`WX2025...`); the
    firmware masks exactly these (dzcore/intake/receipt_check.py)."""
    for run in _STANDING_RUN.findall(value):
        digits = run if run.isascii() else "".join(str(int(d)) for d in run)
        if luhn_ok(digits) and card_prefix(digits):
            raise WireError("pan_unmasked", f"{where} carries what looks like a full PAN", (run,))


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, dict):
        check_no_full_pan(value, where)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, where)
    elif isinstance(value, str) and len(value) >= 13:
        for run in DIGIT_RUN.findall(value):  # any Unicode digits: a card number in any script
            if luhn_ok(run if run.isascii() else "".join(str(int(d)) for d in run)):
                raise WireError(
                    "pan_unmasked", f"{where} carries what looks like a full PAN", (run,)
                )


def mask_secrets(raw: bytes, secrets: tuple[str, ...]) -> bytes:
    """The bytes with each full PAN found by a check masked, length unchanged.

    Quarantine keeps raw bytes, but a full PAN must never be stored; keeping the length keeps
    the CBOR valid for whoever inspects it.
    """
    for secret in secrets:
        found = secret.encode()
        # Digits beyond ASCII take several bytes each: all starred, the length kept.
        masked = mask(secret).encode() if secret.isascii() else b"*" * len(found)
        raw = raw.replace(found, masked)
    return raw


def mask_pans(raw: bytes) -> bytes:
    """Undecoded bytes with every Luhn-valid 13-19 digit run masked, length unchanged.

    For a message refused before its fields were known: a run that is really a merchant id
    gets masked too, which costs a little evidence and never leaks a card number.
    """

    def masked(match: re.Match[bytes]) -> bytes:
        digits = match.group(0).decode()
        return mask(digits).encode() if luhn_ok(digits) else match.group(0)

    return _DIGIT_RUN_BYTES.sub(masked, raw)
