"""Scan artefacts for full card numbers: files, folders, SQLite databases, PostgreSQL dumps,
LittleFS images (read raw, free blocks included: deleted data is still on the flash).

Two passes. The first learns which digit strings are known ids (values of id columns in SQLite
tables, CSV files and `pg_dump` COPY blocks), so that a merchant id that happens to pass Luhn
is not reported wherever it appears. The second scans every byte of every file, and every
cell of every SQLite table (a cell's text can touch its neighbour's digits in the raw page).
"""

from __future__ import annotations

import csv
import io
import mmap
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from daozhang.errors import InputError
from daozhang.security.pan import KNOWN_ID_FIELDS, Finding, scan_bytes, scan_text_value

_SQLITE_MAGIC = b"SQLite format 3\x00"
_COPY = re.compile(rb"^COPY [^(\n]+\(([^)\n]*)\) FROM stdin;\n(.*?)^\\\.$", re.M | re.S)


@dataclass
class ScanReport:
    files: int = 0
    bytes: int = 0
    findings: list[tuple[Path, Finding]] = field(default_factory=list)


def iter_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            for folder, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    candidate = Path(folder) / name
                    if candidate.is_file() and not candidate.is_symlink():
                        yield candidate
        elif path.is_file():
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def _read(path: Path) -> bytes | mmap.mmap:
    size = path.stat().st_size
    if size == 0:
        return b""
    with path.open("rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def _is_sqlite(data: bytes | mmap.mmap) -> bool:
    return len(data) >= 16 and bytes(data[:16]) == _SQLITE_MAGIC


def _sqlite_tables(path: Path) -> Iterator[tuple[str, list[str], sqlite3.Cursor]]:
    # Read-only and immutable: scanning must never change (or checkpoint) what it inspects.
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in names:
            cursor = db.execute(f'SELECT rowid, * FROM "{table}"')
            columns = [d[0] for d in cursor.description][1:]
            yield table, columns, cursor
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: unreadable SQLite database: {exc}") from exc
    finally:
        db.close()


def _cell_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, int) and len(str(value)) >= 13:
        return str(value)
    return None


def _known_ids(path: Path, data: bytes | mmap.mmap) -> set[str]:
    known: set[str] = set()
    if _is_sqlite(data):
        for _, columns, cursor in _sqlite_tables(path):
            wanted = [i for i, c in enumerate(columns) if c.lower() in KNOWN_ID_FIELDS]
            for row in cursor:
                known.update(str(row[i + 1]) for i in wanted if row[i + 1] is not None)
        return known
    for match in _COPY.finditer(data):
        columns = [c.strip().strip('"').lower() for c in match.group(1).decode().split(",")]
        wanted = [i for i, c in enumerate(columns) if c in KNOWN_ID_FIELDS]
        for line in match.group(2).split(b"\n"):
            cells = line.decode("utf-8", "replace").split("\t")
            known.update(cells[i] for i in wanted if i < len(cells))
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        text = bytes(data).decode("utf-8", "replace") if data else ""
        rows = csv.reader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ",")
        header = [c.strip().lower() for c in next(rows, [])]
        wanted = [i for i, c in enumerate(header) if c in KNOWN_ID_FIELDS]
        for row in rows:
            known.update(row[i].strip() for i in wanted if i < len(row))
    return known


def scan(paths: list[Path], known: set[str] | None = None) -> ScanReport:
    report = ScanReport()
    files = list(iter_files(paths))
    known_values = set(known or ())
    for path in files:
        known_values |= _known_ids(path, _read(path))
    for path in files:
        data = _read(path)
        report.files += 1
        report.bytes += len(data)
        structured: list[Finding] = []
        if _is_sqlite(data):
            for table, columns, cursor in _sqlite_tables(path):
                for row in cursor:
                    for column, value in zip(columns, row[1:], strict=True):
                        text = _cell_text(value)
                        if text is None or column.lower() in KNOWN_ID_FIELDS:
                            continue
                        where = f"{table}.{column} rowid {row[0]}"
                        structured.extend(scan_text_value(text, where))
        seen = {f.masked for f in structured}
        report.findings += [(path, f) for f in structured]
        report.findings += [
            (path, f) for f in scan_bytes(data, known_values) if f.masked not in seen
        ]
    return report
