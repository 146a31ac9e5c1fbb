"""Import settlement files into the store: one transaction per file, all or nothing.

A file is identified by the SHA-256 of its bytes: importing the same bytes again changes
nothing ("already imported"). A bad row rejects the whole file with file, line and field.
Every attempt — imported, duplicate, rejected — is written to `settle_import_log` (in its own
transaction, after the file's one succeeded or rolled back).
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from daozhang.errors import InputError
from daozhang.settle import profiles as P
from daozhang.settle import waiting
from daozhang.settle.container import members
from daozhang.settle.fixed import parse_fixed
from daozhang.settle.parse import parse
from daozhang.settle.parsed import COLUMNS, Block, ParsedFile, column
from daozhang.settle.source import ScanError, Source, scan
from daozhang.settle.table import parse_table
from daozhang.store import Store, Transaction
from daozhang.units import BEIJING


@dataclass
class ImportResult:
    name: str
    outcome: str  # imported | already imported
    kind: str
    rows: int
    date_from: str | None
    date_to: str | None
    acquirer: str
    notes: list[str] = field(default_factory=list)  # said to the user, not failures
    profile: str = ""
    recognised: bool = False  # the profile was recognised from the file, not named


def _beijing_today(now: float | None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, BEIJING).strftime("%Y-%m-%d")


def _acquirer(tx: Transaction, parsed: ParsedFile, given: str | None, mids: set[str]) -> str:
    if given:
        if parsed.acquirer and parsed.acquirer != given:
            raise InputError(
                f"{parsed.name}: line 1: field acquirer: the header says {parsed.acquirer!r}, "
                f"--acquirer says {given!r}"
            )
        return given
    if parsed.acquirer or parsed.kind == "merchants":
        return parsed.acquirer
    ordered = sorted(mids)
    found: set[str] = set()
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
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


# A date in a file name stands alone: `detail_20250102.csv`, `ACQ1-2025-01-02.csv`; digits
# inside a longer run (a merchant number 898320882088000) are never a date.
_NAME_DATE = re.compile(r"(?<![0-9])(20[0-9]{2})(-?)([0-9]{2})\2([0-9]{2})(?![0-9])")


def date_in_name(name: str) -> str | None:
    """The one valid date a file name carries, else None; two different dates are refused."""
    found = set()
    for m in _NAME_DATE.finditer(Path(name).name):
        try:
            found.add(date(int(m[1]), int(m[3]), int(m[4])).isoformat())
        except ValueError:
            continue
    if len(found) > 1:
        raise InputError(
            f"{name}: the file name carries two dates ({', '.join(sorted(found))}): "
            "cannot tell which settle date an empty file covers"
        )
    return found.pop() if found else None


class _AlreadyImported(Exception):
    """Raised inside the transaction to roll the copy back; carries the earlier import."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__(result.name)
        self.result = result


def import_file(
    store: Store,
    path: Path,
    fmt: str | None = None,
    encoding: str | None = None,
    acquirer: str | None = None,
    now: float | None = None,
    require_trailer: bool = False,
    profile: str | None = None,
    profiles: dict[str, P.Profile] | None = None,
    name: str | None = None,
) -> ImportResult:
    """Import one file atomically; raise InputError (nothing changed) when it is bad.

    `require_trailer` refuses a generic CSV without its `#rows,N` trailer (the command line
    asks for it by default): without one, a file cut at a line boundary cannot be told from
    a complete one. `profile` names the layout (settle/profiles.py; `fmt` is the old name of
    the two built-in ones), else it is recognised from the file; `profiles` defaults to the
    built-in ones; `name` is what messages and the log call the file (an archive's entry)."""
    name = name or str(path)
    try:
        source = scan(name, path, encoding)
    except ScanError as exc:
        _log(store, name, exc.sha256, "rejected", str(exc))
        raise
    if profile is None and fmt is not None:
        profile = _FORMAT_PROFILES.get(fmt, fmt)
    try:
        chosen = P.pick(source, profiles or P.load(), profile)
        fits = [e for e in chosen.encodings if e in source.decodes]
        if source.encoding not in chosen.encodings and fits and encoding is None:
            source = replace(source, encoding=fits[0])  # ASCII text is GBK text too
        if source.encoding not in chosen.encodings:
            raise InputError(
                f"{name}: line 1: the file is {source.encoding}; profile {chosen.name} reads "
                f"{' or '.join(chosen.encodings)}"
            )
        result = _import(store, source, chosen, acquirer, now, require_trailer)
        result.profile, result.recognised = chosen.name, profile is None
    except _AlreadyImported as dup:
        result = dup.result
    except InputError as exc:
        _log(store, name, source.sha256, "rejected", str(exc))
        raise
    note = "".join(f"; {n}" for n in result.notes)
    _log(store, name, source.sha256, result.outcome, f"{result.kind}: {result.rows} rows{note}")
    return result


def import_files(
    store: Store,
    path: Path,
    fmt: str | None = None,
    encoding: str | None = None,
    acquirer: str | None = None,
    now: float | None = None,
    require_trailer: bool = False,
    profile: str | None = None,
    profiles: dict[str, P.Profile] | None = None,
) -> list[ImportResult]:
    """Import a file, or each file of a zip or gzip archive (settle/container.py), each one
    atomically. In a zip of several files, one no profile recognises (Alipay's 汇总 summary
    beside its 明细) is skipped and said; any other error stops at that entry."""
    results: list[ImportResult] = []
    with ExitStack() as stack:
        try:
            inside = stack.enter_context(members(path))
        except InputError as exc:
            _log(store, str(path), "", "rejected", str(exc))  # a bomb, a broken archive
            raise
        for m in inside:
            try:
                results.append(
                    import_file(
                        store,
                        m.path,
                        fmt,
                        encoding,
                        acquirer,
                        now,
                        require_trailer,
                        profile,
                        profiles,
                        name=m.name,
                    )
                )
            except InputError as exc:
                if len(inside) > 1 and profile is None and _UNRECOGNISED in str(exc):
                    results.append(
                        ImportResult(m.name, "skipped", "", 0, None, None, "", [_UNRECOGNISED])
                    )
                    continue
                raise
    if results and all(r.outcome == "skipped" for r in results):
        raise InputError(f"{path}: no file in the archive is a settlement file a profile knows")
    return results


_UNRECOGNISED = "no profile recognises this file"
_FORMAT_PROFILES = {"generic": "generic", "unionpay": "unionpay-fixed"}


def _import(
    store: Store,
    source: Source,
    profile: P.Profile,
    acquirer: str | None,
    now: float | None,
    require_trailer: bool,
) -> ImportResult:
    name = source.name
    with store.transaction() as tx:
        if store.dialect == "sqlite":
            # A large file's rows go into six indexes in one transaction: a 32 MiB page cache
            # (default 2 MiB) keeps their upper levels in memory (bench/settle_import.py).
            tx.execute("PRAGMA cache_size = -32768")
        else:
            tx.execute("SELECT pg_advisory_xact_lock(?)", (waiting.IMPORT_LOCK,))
        earlier = tx.execute(
            "SELECT name, kind, n_rows, date_from, date_to, acquirer FROM settle_files"
            " WHERE sha256 = ? AND n_rows > 0 ORDER BY id",
            (source.sha256,),
        )
        if earlier:
            # The same rows again: the same dates, the same money, whatever name it has now.
            # Empty files (n_rows 0) are known by what they cover too, found after the parse.
            e = earlier[0]
            return ImportResult(name, "already imported", e[1], int(e[2]), e[3], e[4], e[5])
        if profile.reader == "table":
            parsed = parse_table(source, profile)
        elif profile.reader == "fixed":
            parsed = parse_fixed(source, profile)
        else:
            parsed = parse(source, require_trailer)
            parsed.format = profile.name
        file_id = int(
            tx.execute(
                "INSERT INTO settle_files (sha256, name, kind, format, encoding, acquirer,"
                " date_from, date_to, n_rows, imported_at) VALUES (?, ?, ?, ?, ?, '', NULL,"
                " NULL, 0, ?) RETURNING id",
                (source.sha256, name, parsed.kind, parsed.format, parsed.encoding, time.time()),
            )[0][0]
        )
        rebuilt = (
            _drop_detail_indexes(tx, source, _least_row_bytes(profile))
            if parsed.kind == "detail"
            else []
        )
        seen = _store_rows(tx, file_id, parsed)
        for sql in rebuilt:
            tx.execute(sql)  # by sorting the table's rows: the bulk of the import's time
        date_from, date_to = seen.dates(parsed.file_date)
        notes = []
        if parsed.counted is False:
            notes.append(
                "no #rows trailer: completeness not checked"
                if profile.reader == "generic"
                else "the file carries no row count: completeness not checked"
            )
        if parsed.kind != "merchants" and date_from is None:
            if parsed.kind == "detail":
                date_from = date_to = date_in_name(name)
            if date_from is None:
                raise InputError(
                    f"{name}: no rows and no date: cannot tell which settle date it covers "
                    "(name an empty file with its date, e.g. detail_20250102.csv)"
                )
        today = _beijing_today(now)
        if date_to is not None and date_to > today:
            raise InputError(
                f"{name}: dated in the future: settle date {date_to} is after today ({today}, "
                "Beijing): wrong file or wrong clock"
            )
        acq = _acquirer(tx, parsed, acquirer, seen.mids)
        same = tx.execute(
            "SELECT name, n_rows FROM settle_files WHERE sha256 = ? AND kind = ? AND"
            " acquirer = ? AND COALESCE(date_from, '') = ? AND COALESCE(date_to, '') = ?"
            " AND id <> ?",
            (source.sha256, parsed.kind, acq, date_from or "", date_to or "", file_id),
        )
        if same:
            raise _AlreadyImported(
                ImportResult(
                    name,
                    "already imported",
                    parsed.kind,
                    int(same[0][1]),
                    date_from,
                    date_to,
                    acq,
                )
            )
        if parsed.kind == "detail":
            _refuse_overlap(tx, name, acq, date_from, date_to, file_id)
        _refuse_repeated_rows(tx, name, parsed.kind, file_id, whole_table=bool(rebuilt))
        waiting.after_import(
            tx, file_id, parsed.kind, date_from, date_to, seen.count, seen.payout_ids()
        )
        tx.execute(
            "UPDATE settle_files SET acquirer = ?, date_from = ?, date_to = ?, n_rows = ?"
            " WHERE id = ?",
            (acq, date_from, date_to, seen.count, file_id),
        )
        return ImportResult(
            name, "imported", parsed.kind, seen.count, date_from, date_to, acq, notes
        )


# A file estimated to hold at least a fifth of the rows `settle_detail` does (and at least
# this many) is stored without the table's secondary indexes, which are then built again
# (SQLite only).
BULK_ROWS = 200_000
# Rebuilding costs the whole table's rows (~5 µs each, the file's included), writing the file's
# rows into the indexes ~38 µs each at 6.6 million rows held, more as the table grows: the
# rebuild is cheaper from about a sixth (bench/settle_import.py --into: 300 MB into 6.6
# million rows, 86 s of CPU row by row, 58 s rebuilt; 100 MB row by row is the cheaper).
_BULK_SHARE = 5
# The fewest bytes a row of any detail layout takes (the generic CSV ~150, ACOM 300, ZM 600):
# a file's size over this is at least its rows.
_LEAST_ROW_BYTES = 100


def _least_row_bytes(profile: P.Profile) -> int:
    """A fixed-width profile's records are at least as long as its last field read."""
    if profile.reader == "fixed":
        return max(_LEAST_ROW_BYTES, profile.least_record_bytes + 1)  # and a line end
    return _LEAST_ROW_BYTES


def _drop_detail_indexes(tx: Transaction, source: Source, least_row_bytes: int) -> list[str]:
    """On SQLite, when the file's rows would reach a fifth of the table's (`_BULK_SHARE`):
    drop `settle_detail`'s secondary indexes for the rows to be built again after them (their
    `CREATE` statements, returned). Each row written into eleven B-trees at random keys was the
    import's cost (bench/settle_import.py: 20,000 rows per CPU s at 1 GB, where the bare table
    takes 280,000); `CREATE INDEX` sorts the rows once per index instead. Inside the file's
    transaction: a refused file rolls the drop back with its rows, and readers keep seeing the
    indexed table until the commit. A table more than five times the file keeps its indexes:
    rebuilding would cost its rows, not the file's. PostgreSQL keeps them (its imports take
    turns and its lookups may run beside one)."""
    if tx.dialect != "sqlite":
        return []
    expected = source.size // least_row_bytes
    if expected < BULK_ROWS:
        return []
    held = tx.execute("SELECT MAX(rowid) FROM settle_detail")[0][0]
    if held is not None and int(held) > _BULK_SHARE * expected:
        return []
    # Kept: the partial indexes of rows that carry a key (`WHERE ord <> ''`): a card row
    # carries no order number, wallet id or original RRN, so it costs them nothing, while a
    # CREATE INDEX reads the whole table to find the few rows that do.
    indexes = tx.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        " AND tbl_name = 'settle_detail' AND sql IS NOT NULL AND sql NOT LIKE ?"
        " ORDER BY name",
        ("%<> ''",),
    )
    for index, _ in indexes:
        tx.execute(f'DROP INDEX "{index}"')
    return [str(sql) for _, sql in indexes]


def _refuse_overlap(
    tx: Transaction,
    name: str,
    acquirer: str,
    date_from: str | None,
    date_to: str | None,
    file_id: int,
) -> None:
    """A second, different detail file for the same acquirer and dates would count twice."""
    clash = tx.execute(
        "SELECT name, date_from, date_to FROM settle_files WHERE kind = 'detail'"
        " AND acquirer = ? AND date_from <= ? AND date_to >= ? AND id <> ?",
        (acquirer, date_to, date_from, file_id),
    )
    if clash:
        other = clash[0]
        raise InputError(
            f"{name}: a different detail file for acquirer {acquirer or '(any)'} and "
            f"{other[1]}..{other[2]} is already imported ({other[0]}); "
            "a corrected file needs a new database or the old one removed"
        )


def _refuse_repeated_rows(
    tx: Transaction, name: str, kind: str, file_id: int, whole_table: bool = False
) -> None:
    """The same row twice in one file would count its money twice: refuse, with both lines.

    Asked of the database, not of a set in memory: the rows are already in this transaction's
    table, and a 200 MB file's rows would not fit a Python set cheaply. `whole_table`: the
    file's rows are a fifth of the table or more (the bulk path), so when every row of the
    file has an RRN, reading the RRN index in order (no sort) and finding no RRN twice in the
    whole table is enough (8.1 s -> about 1 s at 1 GB); any RRN twice, or a row without one,
    and the file's rows are grouped as below."""
    if kind == "merchants":
        return  # a repeated merchant is an update of itself
    if (
        whole_table
        and kind == "detail"
        and not tx.execute(
            "SELECT 1 FROM settle_detail WHERE rrn = '' AND file_id = ? LIMIT 1", (file_id,)
        )
        and not tx.execute(
            "SELECT 1 FROM settle_detail INDEXED BY settle_detail_rrn"
            " GROUP BY rrn HAVING COUNT(*) > 1 LIMIT 1"
        )
    ):
        return
    table, cols = _TABLES[kind], _SAME_ROW[kind]
    # A row repeated field for field repeats these few too: grouping by them is a third of
    # the cost, and only when some rows share them is the whole row compared.
    few = _FEW_DETAIL_COLS if kind == "detail" else ("payout_id", "mid", "settle_date")
    if not tx.execute(
        f"SELECT 1 FROM {table} WHERE file_id = ? GROUP BY {', '.join(few)}"
        " HAVING COUNT(*) > 1 LIMIT 1",
        (file_id,),
    ):
        return
    repeated = tx.execute(
        f"SELECT MIN(line), MAX(line), COUNT(*) FROM {table} WHERE file_id = ?"
        f" GROUP BY {', '.join(cols)} HAVING COUNT(*) > 1 ORDER BY MIN(line) LIMIT 1",
        (file_id,),
    )
    if repeated:
        first, last, n = (int(v) for v in repeated[0])
        more = f" (and {n - 2} more times)" if n > 2 else ""
        raise InputError(
            f"{name}: line {last}: repeats line {first} field for field{more}: "
            "the same row twice would count its money twice"
        )


_TABLES = {"detail": "settle_detail", "payout": "payouts", "merchants": "merchants"}
# A row is the same row when all its stored values are (its line aside).
_SAME_ROW = {kind: columns[1:] for kind, columns in COLUMNS.items()}
_FEW_DETAIL_COLS = ("rrn", "trc", "txn_time", "amt", "ord", "xid")


# The most distinct payout ids a detail file's rows name that the importer keeps (a payout
# a merchant a day: a day's file names a few thousand); past it, not known.
_PAYOUT_IDS_HELD = 20_000


@dataclass
class _Seen:
    """What the stream of rows told us: how many, which dates, which merchants, which
    payouts (a detail file's, up to _PAYOUT_IDS_HELD)."""

    count: int = 0
    first: str | None = None
    last: str | None = None
    mids: set[str] = field(default_factory=set)
    payouts: set[str] | None = field(default_factory=set)

    def add(self, kind: str, block: Block) -> None:
        self.count += len(block)
        self.mids.update(map(itemgetter(column(kind, "mid")), block))
        if kind == "merchants":
            return
        days = set(map(itemgetter(column(kind, "settle_date")), block))
        low, high = min(days), max(days)
        self.first = low if self.first is None or low < self.first else self.first
        self.last = high if self.last is None or high > self.last else self.last
        if kind == "detail" and self.payouts is not None:
            self.payouts.update(map(itemgetter(column(kind, "payout_id")), block))
            if len(self.payouts) > _PAYOUT_IDS_HELD:
                self.payouts = None

    def payout_ids(self) -> set[str] | None:
        return None if self.payouts is None else self.payouts - {""}

    def dates(self, file_date: str | None) -> tuple[str | None, str | None]:
        found = sorted({d for d in (self.first, self.last, file_date) if d is not None})
        return (found[0], found[-1]) if found else (None, None)


def _store_rows(tx: Transaction, file_id: int, parsed: ParsedFile) -> _Seen:
    """Each block of rows with one `executemany`: the rows' tuples as the reader made them,
    the file's id written into the statement (an integer the store gave)."""
    seen = _Seen()
    kind = parsed.kind
    cols = COLUMNS[kind]
    if kind == "merchants":
        updates = ", ".join(f"{c} = excluded.{c}" for c in (*cols[2:], "file_id"))
        sql = (
            f"INSERT INTO merchants ({', '.join(cols[1:])}, file_id)"
            f" VALUES ({', '.join('?' * (len(cols) - 1))}, {int(file_id)})"
            f" ON CONFLICT (mid) DO UPDATE SET {updates}"
        )
    else:
        sql = (
            f"INSERT INTO {_TABLES[kind]} (file_id, {', '.join(cols)})"
            f" VALUES ({int(file_id)}, {', '.join('?' * len(cols))})"
        )
    with closing(parsed.blocks):
        for block in parsed.blocks:
            seen.add(kind, block)
            tx.executemany(sql, [row[1:] for row in block] if kind == "merchants" else block)
    return seen


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
