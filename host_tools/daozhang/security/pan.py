"""Card numbers: Luhn check, masking, and finding full PANs or track data in raw bytes.

A finding is a *full* PAN: a run of exactly 13–19 digits (not part of a longer run) that starts
as a card number does (Mastercard 2221–2720, Amex 3, Visa 4, Mastercard 5, Discover/UnionPay 6)
and passes Luhn; or the same
grouped in fours by spaces or dashes; or magnetic-stripe track data (track 1 `B<pan>^NAME^`,
track 2 `<pan>=<YYMM><service code>`). Runs that are known id fields (merchant id, RRN, ...)
are skipped: a key naming one just before the run, a column naming one in a table, or a value
listed as known. Only masked forms ever leave this module.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# Field names that hold ids, never card numbers: DESIGN §1.2 and §2.1, store columns.
KNOWN_ID_FIELDS = frozenset(
    {
        "mid",
        "tid",
        "bat",
        "trc",
        "rrn",
        "orrn",
        "otrc",
        "auth",
        "epoch",
        "seq",
        "boot",
        "up",
        "dev",
        "merchant_id",
        "terminal_id",
        "batch_no",
        "trace_no",
        "orig_rrn",
        "payout_id",
        "seq_from",
        "seq_to",
        "next_seq",
        "acked",
        "upto",
        "serial",
        "cell",
    }
)

_RUN = re.compile(rb"(?<![0-9])[2-6][0-9]{12,18}(?![0-9])")
_GROUPED = re.compile(rb"(?<![0-9])[2-6][0-9]{3}([ -])[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}(?![0-9])")
_TRACK1 = re.compile(rb"B([0-9]{13,19})\^[^^\x00\n]{2,26}\^[0-9]{7}")
_TRACK2 = re.compile(rb"(?<![0-9])([0-9]{13,19})[=D][0-9]{7}")
_KEY_BEFORE = re.compile(rb"([A-Za-z_]{2,20})[^A-Za-z0-9_]{0,6}$")
_LOOKBACK = 32


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_prefix(digits: str) -> bool:
    """Whether a digit run begins as a card number can: 3 (Amex, JCB, Diners), 4 (Visa), 5
    (Mastercard), 6 (UnionPay 62, Discover), 8 and 9 (UnionPay's 81, China's domestic 9xxx), or
    Mastercard's 2221-2720. A merchant's order number of a date (`2025...`) or a serial
    starting 0, 1 or 7 does not: the receipt's ids are judged by it (a tenth of such numbers
    pass Luhn by chance, and each of them would be refused or masked)."""
    first = digits[:1]
    return first in ("3", "4", "5", "6", "8", "9") or "2221" <= digits[:4] <= "2720"


def is_full_pan(digits: str) -> bool:
    """A 13-19 digit run passing Luhn that begins as a card number of the brands found here
    can: 3, 4, 5, 6 or Mastercard's 2221-2720 (`card_prefix` without the domestic 8 and 9).
    Times and order numbers led by a date (`20261119093007`, fixed-width settlement files
    have them with no column names; one in ten passes Luhn) are not."""
    in_range = 13 <= len(digits) <= 19 and digits[0] not in "89"
    return in_range and card_prefix(digits) and luhn_ok(digits)


def mask(pan: str) -> str:
    """First 6, a star for each middle digit, last 4 (DESIGN §1.2): `622848******1234`."""
    digits = re.sub(r"[^0-9]", "", pan)
    if len(digits) < 11:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


_GLUE = 4  # digits of a neighbouring cell glued to a known id in a raw database page
_LONG_ID = 10  # only ids this long: a real PAN whose last 10+ digits equal an RRN is unheard of


def is_known(digits: str, known_values: set[str]) -> bool:
    """A known id, or a long known id with a short cell glued on: SQLite's record format
    writes a row's text cells back to back, so a decline code `51` before the RRN
    `510000000238` makes the 14-digit run `51510000000238` in the raw page."""
    if digits in known_values:
        return True
    for glue in range(1, _GLUE + 1):
        head, tail = digits[:-glue], digits[glue:]
        if len(tail) >= _LONG_ID and (tail in known_values or head in known_values):
            return True
    return False


@dataclass(frozen=True)
class Finding:
    offset: int
    kind: str  # "pan" | "track1" | "track2"
    masked: str
    where: str = ""  # for structured sources: "table.column rowid N"

    def describe(self, path: str) -> str:
        place = f"{path}:{self.where}" if self.where else f"{path}:{self.offset}"
        label = {"pan": "full PAN", "track1": "track 1 data", "track2": "track 2 data"}
        return f"{place}: {label[self.kind]} {self.masked}"


def _key_before(data: bytes | mmap.mmap, start: int) -> str:
    found = _KEY_BEFORE.search(bytes(data[max(0, start - _LOOKBACK) : start]))
    return found.group(1).decode().lower() if found else ""


_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_HEX_BLOB = 32  # a key, a hash, a MAC in hex: 32 hex characters or more
_HEX_LOOK = 256


def _in_hex_blob(data: bytes | mmap.mmap, start: int, end: int) -> bool:
    """The digits sit inside a long hex string (a key or hash in a config file, a log line).

    Random hex holds a Luhn-valid run of 13-19 decimal digits often enough to matter: one
    64-character HMAC key in about 480 does (measured), so a 20-board run trips about once in
    25. A card number is never glued to hex letters: in CBOR its header byte (`m`-`s`,
    `M`-`S`) is not hex, and in text a quote or a space bounds it.
    """
    left = start
    while left > max(0, start - _HEX_LOOK) and data[left - 1] in _HEX:
        left -= 1
    right = end
    while right < min(len(data), end + _HEX_LOOK) and data[right] in _HEX:
        right += 1
    if right - left < _HEX_BLOB:
        return False
    return not bytes(data[left:right]).isdigit()  # a letter in it: hex, not a long number


def _is_id_key(key: str) -> bool:
    # In CBOR a short text string's header byte is itself a letter (0x61-0x77) glued to the
    # key and to the value: `{"mid": "4023..."}` is `c` `mid` `o` `4023...`.
    return bool({key, key[1:], key[:-1], key[1:-1]} & KNOWN_ID_FIELDS)


def _scan_window(data: bytes, base: int, known_values: set[str]) -> list[Finding]:
    """Findings in one window of the data; offsets are `base` + the offset in the window."""
    track_spans: list[tuple[int, int]] = []
    results: list[Finding] = []
    for pattern, kind in ((_TRACK1, "track1"), (_TRACK2, "track2")):
        for match in pattern.finditer(data):
            track_spans.append(match.span())
            results.append(Finding(base + match.start(), kind, mask(match.group(1).decode())))
    for pattern in (_RUN, _GROUPED):
        for match in pattern.finditer(data):
            if any(a <= match.start() < b for a, b in track_spans):
                continue
            digits = re.sub(rb"[^0-9]", b"", match.group(0)).decode()
            if not is_full_pan(digits) or is_known(digits, known_values):
                continue
            if _is_id_key(_key_before(data, match.start())):
                continue
            if _in_hex_blob(data, match.start(), match.end()):
                continue
            results.append(Finding(base + match.start(), "pan", mask(digits)))
    return results


# Prefilter: digits, spaces and dashes become "0", everything else "."; only where 13 or more
# of those follow each other can there be a finding. translate() and find() run at memory
# speed, so the regexes above only ever see small windows around candidates.
_CANDIDATE = bytes(48 if c in b"0123456789 -" else 46 for c in range(256))
_RUN13 = b"0" * 13
_ZEROS = re.compile(rb"0+")
_CHUNK = 8 << 20
_MARGIN = 64  # context kept around a candidate: key names before, track data after


def _plain_run(
    data: bytes | mmap.mmap, start: int, end: int, known_values: set[str]
) -> list[Finding] | None:
    """A candidate that is digits only, not track data: decided here, at a few operations
    per candidate (merchant ids and RRNs are everywhere). None: needs the full regexes."""
    raw = bytes(data[start:end])
    digits_only = raw.strip(b" -")
    if not digits_only.isdigit():
        return None
    start += len(raw) - len(raw.lstrip(b" -"))
    end = start + len(digits_only)
    if data[end : end + 1] in (b"=", b"D", b"^") or data[start - 1 : start] == b"B":
        return None
    text = digits_only.decode()
    if not is_full_pan(text) or is_known(text, known_values):
        return []
    if _is_id_key(_key_before(data, start)) or _in_hex_blob(data, start, end):
        return []
    return [Finding(start, "pan", mask(text))]


def scan_bytes(data: bytes | mmap.mmap, known: Iterable[str] = ()) -> Iterator[Finding]:
    """Findings in raw bytes (a file, a flash image, a database page), in offset order."""
    known_values = set(known)
    found: dict[tuple[int, str], Finding] = {}
    size = len(data)
    for chunk_start in range(0, max(size, 1), _CHUNK):
        chunk_end = min(size, chunk_start + _CHUNK + 256)  # overlap: runs across the cut
        marks = bytes(data[chunk_start:chunk_end]).translate(_CANDIDATE)
        windows: list[tuple[int, int]] = []
        pos = marks.find(_RUN13)
        while pos >= 0:
            run = _ZEROS.match(marks, pos)
            end = run.end() if run else pos + 13
            fast = _plain_run(data, chunk_start + pos, chunk_start + end, known_values)
            if fast is not None:  # settled without the regexes (the common case)
                if fast:
                    found.setdefault((fast[0].offset, "pan"), fast[0])
                pos = marks.find(_RUN13, end)
                continue
            start = max(0, chunk_start + pos - _MARGIN)
            stop = min(size, chunk_start + end + _MARGIN)
            # Never cut a digit run at a window's edge: its tail would look like a run of
            # its own (SQLite index pages glue mid, tid, batch and trace into 35 digits).
            while start > 0 and data[start - 1] in _DIGITS:
                start -= 1
            while stop < size and data[stop] in _DIGITS:
                stop += 1
            if windows and start <= windows[-1][1]:
                windows[-1] = (windows[-1][0], stop)
            else:
                windows.append((start, stop))
            pos = marks.find(_RUN13, end)
        for start, stop in windows:
            for finding in _scan_window(bytes(data[start:stop]), start, known_values):
                found.setdefault((finding.offset, finding.kind), finding)
    yield from sorted(found.values(), key=lambda f: f.offset)


def scan_text_value(value: str, where: str) -> Iterator[Finding]:
    """Findings in one structured value (a database cell): its column is not an id field."""
    for finding in scan_bytes(value.encode("utf-8", "replace")):
        yield Finding(finding.offset, finding.kind, finding.masked, where)
