"""Many rows of one INSERT in a few statements on PostgreSQL, instead of one per row.

psycopg's `executemany` sends one statement per row (pipelined), and its per-row Python work
made the collector on PostgreSQL ten times slower than on SQLite. Here an
`INSERT INTO t (cols) VALUES (?, ...) [ON CONFLICT ...]` over many rows becomes one
`INSERT ... SELECT * FROM unnest(col1[], col2[], ...)`, each array cast to its column's type (a
column of NULLs alone would otherwise be text).

`ON CONFLICT (key) DO UPDATE` cannot touch one row twice in a statement, while applying rows
one by one may. So rows are split into rounds: round k holds the k-th row of each conflict key,
and rounds run in order. Rows of one key still apply in their order and rows of different keys
do not interact, so the outcome is the one-by-one outcome.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_INSERT = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \((\?(?:, \?)*)\)(.*)", re.S)
_CONFLICT_KEY = re.compile(r"ON CONFLICT \(([\w, ]+)\) DO UPDATE")


def parse_insert(sql: str) -> tuple[str, list[str], str] | None:
    """(table, columns, tail) of a one-row parameterised INSERT, or None for anything else."""
    match = _INSERT.fullmatch(sql.strip())
    if match is None or "?" in match.group(4):
        return None
    table, columns, marks, tail = match.groups()
    names = [c.strip() for c in columns.split(",")]
    if marks.count("?") != len(names):
        return None
    return table, names, tail


def rounds(rows: list[Sequence[Any]], columns: list[str], tail: str) -> list[list[Sequence[Any]]]:
    """The rows in rounds in which no conflict key repeats (one round without DO UPDATE)."""
    match = _CONFLICT_KEY.search(tail)
    if match is None:
        return [rows]
    key_at = [columns.index(c.strip()) for c in match.group(1).split(",")]
    out: list[list[Sequence[Any]]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for row in rows:
        key = tuple(row[i] for i in key_at)
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(row)
    return out


def statements(
    table: str,
    columns: list[str],
    types: dict[str, str],
    tail: str,
    rows: list[Sequence[Any]],
) -> list[tuple[str, list[Any]]]:
    """psycopg statements (SQL with %s, parameters) that insert `rows` in order.

    One statement per round, whatever its size: the values travel as one array per column
    (`unnest`), so the SQL text, and psycopg's prepared statement, stay the same.
    """
    arrays = ", ".join(f"%b::{types[c]}[]" for c in columns)  # binary: no text quoting
    names = ", ".join(columns)
    sql = f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){tail.replace('%', '%%')}"
    return [
        (sql, [list(col) for col in zip(*group, strict=True)])
        for group in rounds(rows, columns, tail)
    ]
