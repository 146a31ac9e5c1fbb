"""The acquirers' announced maintenance and upgrade windows (DESIGN §2.3 `acquirer_maintenance`).

Acquirers announce them ahead ("2025-01-07 23:00 to 01-08 03:00: clearing system upgrade");
support staff keep them in a small CSV (`acquirer,start,end,what`) or TOML file (`[[notice]]`
tables with the same keys). Times are Beijing wall clock. A bad entry refuses the whole file
with its line; importing the same window again changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
import time
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from daozhang.errors import InputError
from daozhang.settle import rows as R
from daozhang.store import Store
from daozhang.units import BEIJING

COLUMNS = ("acquirer", "start", "end", "what")
_ACQUIRER = R.pattern(r"[0-9A-Za-z_-]{1,16}", "an acquirer code (letters, digits, _ -)")
_WHAT = R.pattern(r"[^\x00-\x1f]{1,200}", "what the window is for (1-200 characters)")
_TOML_TABLE = re.compile(r"^\s*\[\[\s*notice\s*\]\]")


@dataclass(frozen=True)
class Notice:
    acquirer: str
    start: int  # unix seconds
    end: int
    what: str
    line: int = 0

    def covers(self, t: int) -> bool:
        return self.start <= t <= self.end


def when(text: str) -> int:
    """`YYYY-MM-DD HH:MM[:SS]`, Beijing wall clock, to unix seconds."""
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return int(datetime.strptime(text, fmt).replace(tzinfo=BEIJING).timestamp())
        except ValueError:
            continue
    raise ValueError("expected a time YYYY-MM-DD HH:MM (Beijing)")


def read(path: Path) -> list[Notice]:
    """Every notice in a CSV or TOML file, checked; InputError (file:line) on the first bad one."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gbk")
        except UnicodeDecodeError:
            raise InputError(f"{name}: line 1: neither UTF-8 nor GBK text") from None
    if path.suffix.lower() == ".toml":
        return _toml(name, text)
    return _csv(name, text)


def _csv(name: str, text: str) -> list[Notice]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise InputError(
            f"{name}: line 1: empty file (expected a header {','.join(COLUMNS)})"
        ) from None
    except csv.Error as exc:
        raise InputError(f"{name}: line 1: {exc}") from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(f"{name}: line 1: missing columns: {', '.join(missing)}")
    out = []
    try:
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise InputError(
                    f"{name}: line {line}: {len(values)} fields, the header has {len(header)}"
                )
            out.append(_notice(name, line, dict(zip(header, values, strict=True))))
    except csv.Error as exc:
        raise InputError(f"{name}: line {reader.line_num}: {exc}") from None
    return out


def _toml(name: str, text: str) -> list[Notice]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Its message ends "(at line N, column M)".
        found = re.search(r"at line (\d+)", str(exc))
        raise InputError(f"{name}: line {found[1] if found else 1}: {exc}") from None
    entries = doc.get("notice", [])
    lines = [i for i, row in enumerate(text.splitlines(), start=1) if _TOML_TABLE.match(row)]
    if not isinstance(entries, list) or len(lines) != len(entries):
        raise InputError(f"{name}: line 1: expected [[notice]] tables ({', '.join(COLUMNS)})")
    unknown = [k for k in doc if k != "notice"]
    if unknown:
        raise InputError(f"{name}: line 1: unknown key {unknown[0]!r} (expected [[notice]])")
    return [_notice(name, line, entry) for line, entry in zip(lines, entries, strict=True)]


def _notice(name: str, line: int, values: dict[str, Any]) -> Notice:
    got: dict[str, Any] = {}
    for column, convert in (("acquirer", _ACQUIRER), ("start", when), ("end", when)):
        raw = values.get(column)
        text = raw.strip() if isinstance(raw, str) else raw
        try:
            if not isinstance(text, str):
                raise ValueError("expected text")
            R.ascii_digits_only(text)
            got[column] = convert(text)
        except ValueError as exc:
            raise InputError(
                f"{name}: line {line}: field {column}: bad value {raw!r}: {exc}"
            ) from None
    what = values.get("what")
    try:
        got["what"] = _WHAT(what.strip() if isinstance(what, str) else "")
    except ValueError as exc:
        raise InputError(f"{name}: line {line}: field what: bad value {what!r}: {exc}") from None
    if got["end"] <= got["start"]:
        raise InputError(f"{name}: line {line}: field end: the window ends before it starts")
    if got["end"] - got["start"] > 7 * 86_400:
        raise InputError(f"{name}: line {line}: field end: a window longer than 7 days")
    return Notice(got["acquirer"], got["start"], got["end"], got["what"], line)


def import_notices(store: Store, path: Path) -> tuple[int, int]:
    """Store a file's windows in one transaction: (new, already known). Nothing on error."""
    notices = read(path)
    with store.transaction() as tx:
        before = int(tx.execute("SELECT COUNT(*) FROM notices")[0][0])
        tx.executemany(
            "INSERT INTO notices (acquirer, start_t, end_t, what, source, line, imported_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (acquirer, start_t, end_t, what) DO NOTHING",
            [(n.acquirer, n.start, n.end, n.what, path.name, n.line, time.time()) for n in notices],
        )
        added = int(tx.execute("SELECT COUNT(*) FROM notices")[0][0]) - before
    return added, len(notices) - added


def load(store: Store) -> list[Notice]:
    """Every window known, oldest first."""
    return [
        Notice(str(a), int(s), int(e), str(w), int(line))
        for a, s, e, w, line in store.query(
            "SELECT acquirer, start_t, end_t, what, line FROM notices ORDER BY start_t, id"
        )
    ]
