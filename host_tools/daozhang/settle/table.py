"""Read a CSV described by a `table` profile (settle/profiles.py) into detail rows, as a stream.

Real files carry what daozhang's generic CSV does not: cells wrapped in backticks or tabs,
comment and summary lines around the rows, amounts with more than two decimals, refunds as
negative amounts, and no RRN, batch or trace at all (QR and wallet sales): those rows are
joined to receipts by the order number (`ord`) and the channel's transaction id (`xid`).
Fields the file lacks come from the profile's `defaults`, and the settle amount is derived as
amount − fee (money in) or −amount − fee (money out), so the same row checks apply.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Generator
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from daozhang.errors import InputError
from daozhang.settle import rows as R
from daozhang.settle.parsed import ParsedFile, in_blocks, no_blocks
from daozhang.settle.profiles import FieldSpec, Profile
from daozhang.settle.source import Source
from daozhang.settle.times import beijing_seconds
from daozhang.units import BEIJING

_ID = re.compile(r"[\x21-\x7e]{1,64}", re.ASCII)  # printable ASCII: ids, order numbers
_MID = re.compile(r"[0-9A-Za-z]{6,32}", re.ASCII)
_DIRECTION = {"sale": "in", "refund": "refund", "void": "out"}
# Row keys a profile may set (a field or a default) whose values are the row model's words.
_CHOICES = {
    "ch": ("card", "qr"),
    "direction": R.DIRECTIONS,
    "settle_type": R.SETTLE_TYPES,
    "check_flag": R.CHECK_FLAGS,
}


def parse_table(source: Source, profile: Profile) -> ParsedFile:
    parsed = ParsedFile(source.name, profile.kind, profile.name, source.encoding, no_blocks())
    parsed.blocks = in_blocks(profile.kind, _rows(source, profile, parsed))
    parsed.counted = False
    return parsed


def _rows(
    source: Source, profile: Profile, parsed: ParsedFile
) -> Generator[dict[str, Any], None, None]:
    name = source.name
    from_comments: dict[str, str] = {}
    header: list[str] | None = None
    with source.path.open("r", encoding=source.text_encoding(), newline="") as text:
        reader = csv.reader(text)
        for cells in reader:
            line = reader.line_num
            first = cells[0].strip() if cells else ""
            if profile.comment and first.startswith(profile.comment):
                _comment(profile, ",".join(cells), from_comments)
                continue
            if not cells or all(not c.strip(profile.strip + " ") for c in cells):
                continue
            values = [c.strip(profile.strip) for c in cells]
            if header is None:
                if values[0].strip() == profile.header_starts or not profile.header_starts:
                    header = [v.strip() for v in values]
                    _check_header(name, line, profile, header)
                    continue
                raise InputError(
                    f"{name}: line {line}: expected the header row starting "
                    f"{profile.header_starts!r} ({profile.name})"
                )
            if profile.end_starts and values[0].strip() == profile.end_starts:
                break  # the summary: not transactions
            if len(values) != len(header):
                raise InputError(
                    f"{name}: line {line}: {len(values)} fields, the header has {len(header)}"
                )
            row_cells = dict(zip(header, values, strict=True))
            for column in profile.drop:
                row_cells.pop(column, None)  # personal data (holder name, ID): never kept
            yield to_row(name, line, profile, row_cells, from_comments)
    if header is None:
        raise InputError(f"{name}: no header row starting {profile.header_starts!r}")


def _comment(profile: Profile, text: str, found: dict[str, str]) -> None:
    for key, regex in profile.comment_fields.items():
        m = re.search(regex, text)
        if m:
            found[key] = m[1]


def _check_header(name: str, line: int, profile: Profile, header: list[str]) -> None:
    needed = [profile.settle_date_column] if profile.settle_date_column else []
    for column in needed:
        if column not in header:
            raise InputError(
                f"{name}: line {line}: field {column}: column missing (profile {profile.name})"
            )
    for spec in profile.fields:
        for column in (*spec.columns, *spec.by_type.values()):
            if column not in header and not spec.optional:
                raise InputError(
                    f"{name}: line {line}: field {column}: column missing (profile {profile.name})"
                )


def to_row(
    name: str,
    line: int,
    profile: Profile,
    values: dict[str, str],
    comments: dict[str, str],
    file_date: date | None = None,
) -> dict[str, Any]:
    """One record's cells (by column name) into a checked detail row; InputError naming the
    file, line and column. Shared by the CSV (`table`) and fixed-width (`fixed`) readers."""
    row: dict[str, Any] = {"line": line}
    for spec in profile.fields:  # typ first (settle/profiles.py): by_type needs it
        by_type = spec.by_type.get(row.get("typ", "")) if spec.by_type else None
        columns = (by_type,) if by_type else spec.columns
        if len(columns) == 1:
            raw = values.get(columns[0], "").strip()
        else:
            raw = " ".join(values.get(c, "").strip() for c in columns).strip()
        try:
            R.ascii_digits_only(raw)
            row[spec.key] = _value(spec, raw, file_date)
        except ValueError as exc:
            # A card number is never repeated whole, not even in an error (nor the log).
            shown = "(a card number, not shown)" if spec.mask_card else repr(raw)
            raise InputError(
                f"{name}: line {line}: field {'/'.join(columns)}: bad value {shown}: {exc}"
            ) from None
    for key, value in comments.items():
        row.setdefault(key, value)
    for key, value in profile.defaults.items():
        row.setdefault(key, value)
    typ = row.setdefault("typ", "sale")
    if profile.settle_date == "txn_time":
        row["settle_date"] = datetime.fromtimestamp(row["txn_time"], BEIJING).date().isoformat()
    elif profile.settle_date == "column":
        column, fmt = profile.settle_date_column, profile.settle_date_format
        raw = values.get(column, "").strip()
        try:
            R.ascii_digits_only(raw)
            row["settle_date"] = datetime.strptime(raw, fmt).date().isoformat()
        except ValueError:
            raise InputError(
                f"{name}: line {line}: field {column}: bad value {raw!r}: expected a date {fmt}"
            ) from None
    elif profile.settle_date == "file":
        if file_date is None:
            raise InputError(f"{name}: the file name carries no date ({profile.name_date})")
        row["settle_date"] = file_date.isoformat()
    row.setdefault("direction", _DIRECTION.get(typ, "in"))
    row.setdefault("fee", 0)
    for key in ("tid", "bat", "trc", "rrn", "orrn", "pan", "ck", "payout_id", "ord", "xid"):
        row.setdefault(key, "")
    for key, allowed in _CHOICES.items():
        if row.get(key, allowed[0]) not in allowed:
            raise InputError(
                f"{name}: line {line}: field {key}: bad value {row[key]!r}: expected one of "
                f"{', '.join(allowed)}"
            )
    if not _MID.fullmatch(str(row["mid"])):
        raise InputError(
            f"{name}: line {line}: field mid: bad value {row['mid']!r}: expected a merchant id "
            "(6-32 letters or digits)"
        )
    if "settle_amt" not in row:
        amt, fee = row["amt"], row["fee"]
        out = row["direction"] in ("out", "refund")
        row["settle_amt"] = -amt - fee if out else amt - fee
    problem = R.check_detail(row)
    if problem:
        raise InputError(f"{name}: line {line}: field {problem[0]}: {problem[1]}")
    return row


def _value(spec: FieldSpec, raw: str, file_date: date | None) -> Any:
    if raw == "" and spec.optional:
        return ""
    if spec.mask_card:
        return mask_card(raw)
    if spec.time:
        return beijing_seconds(spec.time, raw, file_date)
    if spec.yuan:
        return _fen(raw, spec)
    if spec.fen or spec.dc or spec.signed:
        return _fixed_fen(raw, spec)
    if spec.mapping:
        if raw not in spec.mapping:
            raise ValueError(f"expected one of {', '.join(spec.mapping)}")
        return spec.mapping[raw]
    if spec.pattern and not re.fullmatch(spec.pattern, raw, re.ASCII):
        raise ValueError(f"expected text matching {spec.pattern}")
    if not _ID.fullmatch(raw):
        raise ValueError("expected 1-64 printable ASCII characters")
    return raw


def mask_card(raw: str) -> str:
    """A card number kept as first 6 + last 4 (`622848******1234`); a masked one as it is;
    nothing for none (QR). The full number never leaves this function."""
    if raw == "":
        return ""
    if _MASKED.fullmatch(raw):
        return raw
    if not _FULL_CARD.fullmatch(raw):
        raise ValueError("expected a card number (13-19 digits) or a masked one (622848****1234)")
    return raw[:6] + "*" * (len(raw) - 10) + raw[-4:]


_MASKED = re.compile(r"[0-9]{6}\*{3,9}[0-9]{4}", re.ASCII)
_FULL_CARD = re.compile(r"[0-9]{13,19}", re.ASCII)


def _fixed_fen(raw: str, spec: FieldSpec) -> int:
    """Digits in fen (`000000002500`), or a sign letter and digits (`D000000000015`), or a
    sign and digits (`+000000000060`)."""
    sign = 1
    body = raw
    if spec.dc:
        if raw[:1] not in ("C", "D"):
            raise ValueError("expected C or D then digits in fen")
        sign, body = (1 if raw[0] == spec.dc else -1), raw[1:]
    elif spec.signed:
        if raw[:1] not in ("+", "-"):
            raise ValueError("expected a sign (+ or -) then digits in fen")
        sign, body = (-1 if raw[0] == "-" else 1), raw[1:]
    if not re.fullmatch(r"[0-9]{1,16}", body, re.ASCII):
        raise ValueError("expected digits (an amount in fen)")
    fen = sign * int(body)
    if spec.absolute:
        fen = abs(fen)
    if spec.negate:
        fen = -fen
    return fen


def _fen(raw: str, spec: FieldSpec) -> int:
    """Yuan to fen, rounded half up when the file has more decimals (WeChat's fees have 5)."""
    if not re.fullmatch(r"[+-]?[0-9]{1,13}(\.[0-9]+)?", raw, re.ASCII):
        raise ValueError("expected an amount in yuan, e.g. 12.30")
    try:
        fen = int((Decimal(raw) * 100).quantize(Decimal(1), ROUND_HALF_UP))
    except InvalidOperation:
        raise ValueError("expected an amount in yuan") from None
    if spec.absolute:
        fen = abs(fen)
    if spec.negate:
        fen = -fen
    return fen
