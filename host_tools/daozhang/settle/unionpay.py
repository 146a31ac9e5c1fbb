"""The UnionPay-style fixed-width clearing file: layout, reader and writer.

Every record is one line of fixed-width fields, each followed by a one-byte separator (a space),
widths counted in bytes of the file's encoding (GBK: 2 bytes per Chinese character, UTF-8: 3).
Amounts are in fen, zero-padded; signed amounts carry a leading `+`/`-`. The layout is
documented for integrators in docs/settlement-files.md; this table is its single source.
"""

from __future__ import annotations

from datetime import datetime
from operator import itemgetter

from daozhang.units import BEIJING

SEPARATOR = b" "

# (name, width in bytes). H = header, D = detail, T = trailer.
HEADER = [("rec", 1), ("file_date", 8), ("acquirer", 11), ("version", 2)]
DETAIL = [
    ("rec", 1),
    ("settle_date", 8),
    ("merchant_id", 15),
    ("terminal_id", 8),
    ("txn_time", 14),
    ("txn_type", 4),
    ("channel", 1),
    ("batch_no", 6),
    ("trace_no", 6),
    ("rrn", 12),
    ("orig_rrn", 12),
    ("card_masked", 19),
    ("card_kind", 1),
    ("amount", 12),
    ("fee", 12),
    ("settle_amount", 12),
    ("fund_direction", 1),
    ("settle_type", 2),
    ("check_flag", 1),
    ("payout_id", 20),
    ("merchant_name", 40),
]
TRAILER = [("rec", 1), ("count", 8), ("total_amount", 16)]

TYPE_CODES = {
    "SALE": "sale",
    "VOID": "void",
    "RFND": "refund",
    "PAUT": "preauth",
    "PAVD": "preauth_void",
    "PACM": "preauth_done",
    "PACV": "preauth_done_void",
}
CHANNEL_CODES = {"C": "card", "Q": "qr"}
DIRECTION_CODES = {"I": "in", "O": "out", "F": "frozen", "U": "unfrozen", "R": "refund"}


def record_length(layout: list[tuple[str, int]]) -> int:
    return sum(width for _, width in layout) + len(layout) - 1


class LayoutError(ValueError):
    """A record does not fit the layout; `field` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def split(line: bytes, layout: list[tuple[str, int]], encoding: str) -> dict[str, str]:
    """Cut one record into its fields (text, right-stripped)."""
    if len(line) != record_length(layout):
        raise LayoutError(
            "record", f"record is {len(line)} bytes, the layout needs {record_length(layout)}"
        )
    fields: dict[str, str] = {}
    pos = 0
    for i, (name, width) in enumerate(layout):
        raw = line[pos : pos + width]
        try:
            fields[name] = raw.decode(encoding).rstrip(" ")
        except UnicodeDecodeError:
            raise LayoutError(name, f"not valid {encoding} text") from None
        pos += width
        if i < len(layout) - 1:
            if line[pos : pos + 1] != SEPARATOR:
                raise LayoutError(name, f"no separator after {name} at byte {pos + 1}")
            pos += 1
    return fields


def to_generic(fields: dict[str, str]) -> dict[str, str]:
    """A detail record's fields in the generic CSV's spelling, for the shared checks."""
    out = dict(fields)
    out["settle_date"] = _date(fields["settle_date"], "settle_date")
    stamp = fields["txn_time"]
    try:
        out["txn_time"] = datetime.strptime(stamp, "%Y%m%d%H%M%S").strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise LayoutError("txn_time", "expected YYYYMMDDhhmmss") from None
    out["txn_type"] = _code(TYPE_CODES, fields, "txn_type")
    out["channel"] = _code(CHANNEL_CODES, fields, "channel")
    out["fund_direction"] = _code(DIRECTION_CODES, fields, "fund_direction")
    out["amount"] = _fen(fields["amount"], "amount", signed=False)
    out["fee"] = _fen(fields["fee"], "fee", signed=True)
    out["settle_amount"] = _fen(fields["settle_amount"], "settle_amount", signed=True)
    return out


def _date(text: str, field: str) -> str:
    try:
        return datetime.strptime(text, "%Y%m%d").strftime("%Y-%m-%d")
    except ValueError:
        raise LayoutError(field, "expected a date YYYYMMDD") from None


def _code(table: dict[str, str], fields: dict[str, str], name: str) -> str:
    code = fields[name]
    if code not in table:
        raise LayoutError(name, f"expected one of {', '.join(table)}")
    return table[code]


def _fen(text: str, field: str, signed: bool) -> str:
    body = text
    sign = ""
    if signed:
        if text[:1] not in ("+", "-"):
            raise LayoutError(field, "expected a sign (+ or -) then digits in fen")
        sign, body = ("-" if text[0] == "-" else ""), text[1:]
    if not body.isdigit():
        raise LayoutError(field, "expected digits (amount in fen)")
    fen = int(body)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


# The fast cut of a detail record (unionpay_read.py converts a block of them at once): every
# field but the last (the merchant's name) is ASCII, so its bytes are its characters.
_NAME_AT = record_length(DETAIL[:-1]) + len(SEPARATOR)
_STARTS = [record_length(DETAIL[:i]) + len(SEPARATOR) if i else 0 for i in range(len(DETAIL))]
_CUT = itemgetter(
    *(slice(at, at + w) for at, (_, w) in zip(_STARTS[:-1], DETAIL[:-1], strict=True))
)
_SEPS = itemgetter(*(at - 1 for at in _STARTS[1:]))
_SPACES = (SEPARATOR[0],) * (len(DETAIL) - 1)
_DETAIL_BYTES = record_length(DETAIL)


def generic_cells(raw: bytes, encoding: str) -> list[str] | None:
    """A detail record's cells in the generic CSV's spelling (rows.DETAIL's order), or None
    when anything in it is not plainly valid: the caller then reads it with `split` and
    `to_generic`, whose errors name the field. Dates and times are only re-spelled here; the
    block converter (settle/fastrows.py) checks them and hands back a block with a bad one."""
    if len(raw) != _DETAIL_BYTES or _SEPS(raw) != _SPACES or not raw[:_NAME_AT].isascii():
        return None
    try:
        raw[_NAME_AT:].decode(encoding)
    except UnicodeDecodeError:
        return None
    cells = [v.rstrip(" ") for v in _CUT(raw[:_NAME_AT].decode("ascii"))]
    day, when, typ, chan, direction = cells[1], cells[4], cells[5], cells[6], cells[16]
    amt, fee, net = cells[13], cells[14], cells[15]
    if not (
        day.isdigit()
        and when.isdigit()
        and amt.isdigit()
        and fee[:1] in ("+", "-")
        and fee[1:].isdigit()
        and net[:1] in ("+", "-")
        and net[1:].isdigit()
        and typ in TYPE_CODES
        and chan in CHANNEL_CODES
        and direction in DIRECTION_CODES
    ):
        return None
    cells[1] = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    cells[4] = f"{when[:4]}-{when[4:6]}-{when[6:8]} {when[8:10]}:{when[10:12]}:{when[12:]}"
    cells[5], cells[6], cells[16] = TYPE_CODES[typ], CHANNEL_CODES[chan], DIRECTION_CODES[direction]
    cells[13] = _fen(amt, "amount", signed=False)
    cells[14], cells[15] = _fen(fee, "fee", signed=True), _fen(net, "settle_amount", signed=True)
    return cells[1:]


def header_fields(fields: dict[str, str]) -> tuple[str, str]:
    """(file date YYYY-MM-DD, acquirer code) of a header record."""
    return _date(fields["file_date"], "file_date"), fields["acquirer"]


# -- writer (the scenario generator and tests write files the way an acquirer would) --------


def _pad(text: str, width: int, encoding: str, right: bool = False) -> bytes:
    raw = text.encode(encoding)
    if len(raw) > width:
        raise ValueError(f"{text!r} does not fit in {width} bytes")
    fill = b" " * (width - len(raw))
    return fill + raw if right else raw + fill


def _signed(fen: int, width: int) -> str:
    return ("-" if fen < 0 else "+") + str(abs(fen)).rjust(width - 1, "0")


def write(
    file_date: str, acquirer: str, rows: list[dict[str, object]], encoding: str = "gbk"
) -> bytes:
    """A whole file from generic detail rows (keys as in rows.DETAIL, amounts in fen)."""
    codes = {v: k for k, v in TYPE_CODES.items()}
    chans = {v: k for k, v in CHANNEL_CODES.items()}
    dirs = {v: k for k, v in DIRECTION_CODES.items()}
    lines = [_join(HEADER, ["H", file_date.replace("-", ""), acquirer, "01"], encoding)]
    total = 0
    for r in rows:
        when = datetime.fromtimestamp(int(str(r["txn_time"])), BEIJING)
        total += int(str(r["amt"]))
        values = [
            "D",
            str(r["settle_date"]).replace("-", ""),
            str(r["mid"]),
            str(r["tid"]),
            when.strftime("%Y%m%d%H%M%S"),
            codes[str(r["typ"])],
            chans[str(r["ch"])],
            str(r["bat"]),
            str(r["trc"]),
            str(r["rrn"]),
            str(r["orrn"]),
            str(r["pan"]),
            str(r["ck"]),
            str(r["amt"]).rjust(12, "0"),
            _signed(int(str(r["fee"])), 12),
            _signed(int(str(r["settle_amt"])), 12),
            dirs[str(r["direction"])],
            str(r["settle_type"]),
            str(r["check_flag"]),
            str(r["payout_id"]),
            str(r.get("merchant_name", "")),
        ]
        lines.append(_join(DETAIL, values, encoding))
    lines.append(
        _join(TRAILER, ["T", str(len(rows)).rjust(8, "0"), str(total).rjust(16, "0")], encoding)
    )
    return b"\r\n".join(lines) + b"\r\n"


def _join(layout: list[tuple[str, int]], values: list[str], encoding: str) -> bytes:
    return SEPARATOR.join(_pad(v, w, encoding) for (_, w), v in zip(layout, values, strict=True))
