"""Import settlement files into the store: one transaction per file, all or nothing.

A file is identified by the SHA-256 of its bytes: importing the same bytes again changes
nothing ("already imported"). A bad row rejects the whole file with file, line and field.
Every attempt — imported, duplicate, rejected — is written to `settle_import_log` (in its own
transaction, after the file's one succeeded or rolled back).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from daozhang.errors import InputError
from daozhang.settle import rows as R
from daozhang.settle import unionpay
from daozhang.store import Store, Transaction

ENCODINGS = ("utf-8", "gbk")
FORMATS = ("generic", "unionpay")


@dataclass
class ParsedFile:
    name: str
    kind: str  # detail | payout | merchants
    format: str
    encoding: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    acquirer: str = ""
    file_date: str | None = None  # a header's date, when the format has one

    def dates(self) -> tuple[str | None, str | None]:
        found = sorted({r["settle_date"] for r in self.rows if "settle_date" in r})
        if self.file_date:
            found = sorted({*found, self.file_date})
        return (found[0], found[-1]) if found else (None, None)


@dataclass
class ImportResult:
    name: str
    outcome: str  # imported | already imported
    kind: str
    rows: int
    date_from: str | None
    date_to: str | None
    acquirer: str


def decode(name: str, data: bytes, encoding: str | None) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM allowed) first, then GBK, unless one is forced."""
    candidates = (encoding,) if encoding else ENCODINGS
    first_error: UnicodeDecodeError | None = None
    for enc in candidates:
        try:
            text = data.decode("utf-8-sig" if enc == "utf-8" else enc)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
            continue
        if "\x00" in text:
            # UTF-16 and binary files decode "fine" byte by byte; NULs give them away.
            raise InputError(f"{name}: contains NUL bytes: not a UTF-8 or GBK text file")
        return text, enc
    assert first_error is not None  # the loop ran at least once
    line = data[: first_error.start].count(b"\n") + 1
    tried = " or ".join(candidates)
    raise InputError(
        f"{name}: line {line}: wrong encoding: not {tried} text "
        f"(byte 0x{data[first_error.start]:02x} at offset {first_error.start})"
    )


def parse(name: str, data: bytes, fmt: str | None, encoding: str | None) -> ParsedFile:
    text, enc = decode(name, data, encoding)
    if fmt is None:
        fmt = "unionpay" if text.startswith("H ") else "generic"
    if fmt == "generic":
        return _parse_generic(name, text, enc)
    if fmt == "unionpay":
        return _parse_unionpay(name, data, enc)
    raise InputError(f"{name}: unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def _kind_of(name: str, header: list[str]) -> str:
    columns = set(header)
    for kind, spec in R.KINDS.items():
        if set(spec) <= columns:
            return kind
    best = min(R.KINDS, key=lambda k: len(set(R.KINDS[k]) - columns))
    missing = [c for c in R.KINDS[best] if c not in columns]
    raise InputError(
        f"{name}: line 1: header is not a detail, payout or merchants file "
        f"(closest: {best}; missing columns: {', '.join(missing)})"
    )


def _convert(
    name: str, line: int, spec: dict[str, tuple[str, R.Converter]], values: dict[str, str]
) -> dict[str, Any]:
    row: dict[str, Any] = {"line": line}
    for column, (key, converter) in spec.items():
        raw = (values.get(column) or "").strip()
        try:
            row[key] = converter(raw)
        except ValueError as exc:
            raise InputError(
                f"{name}: line {line}: field {column}: bad value {raw!r}: {exc}"
            ) from None
    return row


def _parse_generic(name: str, text: str, enc: str) -> ParsedFile:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(f"{name}: empty file (no header row)") from None
    except csv.Error as exc:
        raise InputError(f"{name}: line 1: {exc}") from None
    kind = _kind_of(name, header)
    parsed = ParsedFile(name, kind, "generic", enc)
    spec = R.KINDS[kind]
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise InputError(
                    f"{name}: line {line}: {len(values)} fields, the header has {len(header)}"
                )
            parsed.rows.append(_convert(name, line, spec, dict(zip(header, values, strict=True))))
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num}: {exc}") from None
    return parsed


def _parse_unionpay(name: str, data: bytes, enc: str) -> ParsedFile:
    lines = [ln.rstrip(b"\r") for ln in data.split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    parsed = ParsedFile(name, "detail", "unionpay", enc)
    if not lines or not lines[0].startswith(b"H"):
        raise InputError(f"{name}: line 1: field rec: expected a header record (H)")
    try:
        header = unionpay.split(lines[0], unionpay.HEADER, enc)
        parsed.file_date, parsed.acquirer = unionpay.header_fields(header)
    except unionpay.LayoutError as exc:
        raise InputError(f"{name}: line 1: field {exc.field}: {exc}") from None
    trailer: dict[str, str] | None = None
    total = 0
    for number, raw in enumerate(lines[1:], start=2):
        if trailer is not None:
            raise InputError(f"{name}: line {number}: record after the trailer (T)")
        try:
            if raw.startswith(b"T"):
                trailer = unionpay.split(raw, unionpay.TRAILER, enc)
                continue
            if not raw.startswith(b"D"):
                raise unionpay.LayoutError("rec", "expected a detail (D) or trailer (T) record")
            fields = unionpay.to_generic(unionpay.split(raw, unionpay.DETAIL, enc))
        except unionpay.LayoutError as exc:
            raise InputError(f"{name}: line {number}: field {exc.field}: {exc}") from None
        row = _convert(name, number, R.DETAIL, fields)
        total += row["amt"]
        parsed.rows.append(row)
    if trailer is None:
        raise InputError(f"{name}: line {len(lines) + 1}: missing trailer (T): file truncated?")
    count = trailer["count"]
    if not count.isdigit() or int(count) != len(parsed.rows):
        raise InputError(
            f"{name}: line {len(lines)}: field count: trailer says {count!r}, "
            f"the file has {len(parsed.rows)} detail records"
        )
    if not trailer["total_amount"].isdigit() or int(trailer["total_amount"]) != total:
        raise InputError(
            f"{name}: line {len(lines)}: field total_amount: trailer says "
            f"{trailer['total_amount']!r}, the detail records add up to {total}"
        )
    return parsed


def _beijing_today(now: float | None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, R.BEIJING).strftime(
        "%Y-%m-%d"
    )


def _acquirer(tx: Transaction, parsed: ParsedFile, given: str | None) -> str:
    if given:
        if parsed.acquirer and parsed.acquirer != given:
            raise InputError(
                f"{parsed.name}: line 1: field acquirer: the header says {parsed.acquirer!r}, "
                f"--acquirer says {given!r}"
            )
        return given
    if parsed.acquirer or parsed.kind == "merchants":
        return parsed.acquirer
    mids = sorted({r["mid"] for r in parsed.rows})
    found: set[str] = set()
    for start in range(0, len(mids), 500):
        chunk = mids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        found |= {
            str(r[0])
            for r in tx.execute(
                f"SELECT DISTINCT acquirer FROM merchants WHERE mid IN ({marks})", chunk
            )
        }
    # One acquirer known for all its merchants: the file is that acquirer's. Otherwise the
    # file covers its dates for every acquirer ('').
    return found.pop() if len(found) == 1 else ""


def import_file(
    store: Store,
    path: Path,
    fmt: str | None = None,
    encoding: str | None = None,
    acquirer: str | None = None,
    now: float | None = None,
) -> ImportResult:
    """Import one file atomically; raise InputError (nothing changed) when it is bad."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        result = _import(store, name, data, digest, fmt, encoding, acquirer, now)
    except InputError as exc:
        _log(store, name, digest, "rejected", str(exc))
        raise
    _log(store, name, digest, result.outcome, f"{result.kind}: {result.rows} rows")
    return result


def _import(
    store: Store,
    name: str,
    data: bytes,
    digest: str,
    fmt: str | None,
    encoding: str | None,
    acquirer: str | None,
    now: float | None,
) -> ImportResult:
    with store.transaction() as tx:
        earlier = tx.execute(
            "SELECT name, kind, n_rows, date_from, date_to, acquirer FROM settle_files"
            " WHERE sha256 = ?",
            (digest,),
        )
        if earlier:
            e = earlier[0]
            return ImportResult(name, "already imported", e[1], int(e[2]), e[3], e[4], e[5])
        parsed = parse(name, data, fmt, encoding)
        date_from, date_to = parsed.dates()
        today = _beijing_today(now)
        if date_to is not None and date_to > today:
            raise InputError(
                f"{name}: dated in the future: settle date {date_to} is after today ({today}, "
                "Beijing): wrong file or wrong clock"
            )
        if parsed.kind != "merchants" and date_from is None:
            if parsed.kind == "detail":
                m = re.search(r"(20\d\d)-?(\d\d)-?(\d\d)", Path(name).name)
                if m:
                    date_from = date_to = f"{m[1]}-{m[2]}-{m[3]}"
            if date_from is None:
                raise InputError(
                    f"{name}: no rows and no date: cannot tell which settle date it covers "
                    "(name an empty file with its date, e.g. detail_20250102.csv)"
                )
        acq = _acquirer(tx, parsed, acquirer)
        if parsed.kind == "detail":
            _refuse_overlap(tx, name, acq, date_from, date_to)
        tx.execute(
            "INSERT INTO settle_files (sha256, name, kind, format, encoding, acquirer,"
            " date_from, date_to, n_rows, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                digest,
                name,
                parsed.kind,
                parsed.format,
                parsed.encoding,
                acq,
                date_from,
                date_to,
                len(parsed.rows),
                time.time(),
            ),
        )
        file_id = int(tx.execute("SELECT id FROM settle_files WHERE sha256 = ?", (digest,))[0][0])
        _store_rows(tx, file_id, parsed)
        return ImportResult(
            name, "imported", parsed.kind, len(parsed.rows), date_from, date_to, acq
        )


def _refuse_overlap(
    tx: Transaction, name: str, acquirer: str, date_from: str | None, date_to: str | None
) -> None:
    """A second, different detail file for the same acquirer and dates would count twice."""
    clash = tx.execute(
        "SELECT name, date_from, date_to FROM settle_files WHERE kind = 'detail'"
        " AND acquirer = ? AND date_from <= ? AND date_to >= ?",
        (acquirer, date_to, date_from),
    )
    if clash:
        other = clash[0]
        raise InputError(
            f"{name}: a different detail file for acquirer {acquirer or '(any)'} and "
            f"{other[1]}..{other[2]} is already imported ({other[0]}); "
            "a corrected file needs a new database or the old one removed"
        )


_DETAIL_COLS = (
    "settle_date",
    "mid",
    "tid",
    "txn_time",
    "typ",
    "ch",
    "bat",
    "trc",
    "rrn",
    "orrn",
    "pan",
    "ck",
    "amt",
    "fee",
    "settle_amt",
    "direction",
    "settle_type",
    "check_flag",
    "payout_id",
)
_PAYOUT_COLS = (
    "payout_id",
    "mid",
    "settle_type",
    "settle_date",
    "plan_fen",
    "fee_fen",
    "suspend_fen",
    "retained_fen",
    "real_fen",
    "state",
    "fail_reason",
    "bank_account",
)
_MERCHANT_COLS = (
    "mid",
    "acquirer",
    "fee_rate",
    "debit_cap_fen",
    "d0_surcharge",
    "settle_type",
    "bank_account",
    "status",
)


def _store_rows(tx: Transaction, file_id: int, parsed: ParsedFile) -> None:
    if parsed.kind in ("detail", "payout"):
        table, cols = (
            ("settle_detail", _DETAIL_COLS)
            if parsed.kind == "detail"
            else ("payouts", _PAYOUT_COLS)
        )
        tx.executemany(
            f"INSERT INTO {table} (file_id, line, {', '.join(cols)})"
            f" VALUES (?, ?, {', '.join('?' * len(cols))})",
            ([file_id, r["line"], *(r[c] for c in cols)] for r in parsed.rows),
        )
        return
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*_MERCHANT_COLS[1:], "file_id"))
    tx.executemany(
        f"INSERT INTO merchants ({', '.join(_MERCHANT_COLS)}, file_id)"
        f" VALUES ({', '.join('?' * (len(_MERCHANT_COLS) + 1))})"
        f" ON CONFLICT (mid) DO UPDATE SET {updates}",
        ([*(r[c] for c in _MERCHANT_COLS), file_id] for r in parsed.rows),
    )


def _log(store: Store, name: str, digest: str, outcome: str, message: str) -> None:
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO settle_import_log (at, name, sha256, outcome, message)"
            " VALUES (?, ?, ?, ?, ?)",
            (time.time(), name, digest, outcome, message[:2000]),
        )


def list_imports(store: Store) -> list[dict[str, Any]]:
    with store.transaction() as tx:
        rows = tx.execute(
            "SELECT id, name, kind, format, encoding, acquirer, date_from, date_to, n_rows,"
            " imported_at FROM settle_files ORDER BY COALESCE(date_from, ''), kind, acquirer, id"
        )
    keys = (
        "id",
        "name",
        "kind",
        "format",
        "encoding",
        "acquirer",
        "date_from",
        "date_to",
        "rows",
        "imported_at",
    )
    return [dict(zip(keys, r, strict=True)) for r in rows]
