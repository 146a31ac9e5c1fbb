"""Import settlement files into the store: one transaction per file, all or nothing.

A file is identified by the SHA-256 of its bytes: importing the same bytes again changes
nothing ("already imported"). A bad row rejects the whole file with file, line and field.
Every attempt — imported, duplicate, rejected — is written to `settle_import_log` (in its own
transaction, after the file's one succeeded or rolled back).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from daozhang.errors import InputError
from daozhang.settle import rows as R
from daozhang.settle.parse import ParsedFile, parse
from daozhang.store import Store, Transaction


@dataclass
class ImportResult:
    name: str
    outcome: str  # imported | already imported
    kind: str
    rows: int
    date_from: str | None
    date_to: str | None
    acquirer: str


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
