"""PostgreSQL's multi-row inserts give what the same rows one by one give (SQLite's way)."""

from __future__ import annotations

import random

from daozhang.lab.postgres import TempPostgres
from daozhang.schema import open_database
from daozhang.store.pg_bulk import parse_insert, rounds

_TABLE = """CREATE TABLE t (
    k TEXT NOT NULL, j BIGINT NOT NULL, seq BIGINT NOT NULL, v TEXT, n DOUBLE PRECISION,
    raw {blob}, PRIMARY KEY (k, j))"""
_UPSERT = (
    "INSERT INTO t (k, j, seq, v, n, raw) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (k, j) DO UPDATE SET seq = excluded.seq, v = excluded.v, n = excluded.n,"
    " raw = excluded.raw WHERE t.seq < excluded.seq OR t.v IS NULL"
)
_IGNORE = "INSERT INTO t (k, j, seq, v, n, raw) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"


def _rows(rng: random.Random, n: int) -> list[tuple[object, ...]]:
    return [
        (
            rng.choice("abc"),
            rng.randrange(3),
            rng.randrange(10),
            rng.choice([None, "x", "y%s", "100%"]),
            rng.choice([None, 1.5]),
            rng.choice([None, b"\x00\xff"]),
        )
        for _ in range(n)
    ]


def _apply(
    url: str, batches: list[tuple[str, list[tuple[object, ...]]]]
) -> list[tuple[object, ...]]:
    with open_database(url, migrate=False) as store:
        with store.transaction() as tx:
            tx.execute(store.render(_TABLE))
        for sql, rows in batches:
            with store.transaction() as tx:
                tx.executemany(sql, rows)
        with store.transaction() as tx:
            got = tx.execute("SELECT k, j, seq, v, n, raw FROM t ORDER BY k, j")
    return [(*r[:5], bytes(r[5]) if r[5] is not None else None) for r in got]


def test_bulk_upserts_on_postgresql_match_row_by_row_on_sqlite(
    sqlite_url: str, postgres_server: TempPostgres
) -> None:
    rng = random.Random(3)
    # Repeated keys inside one executemany: the rounds must keep their order.
    batches = [(rng.choice([_UPSERT, _IGNORE]), _rows(rng, rng.randint(2, 40))) for _ in range(30)]
    pg_url = postgres_server.create_database("bulk_equivalence")
    assert _apply(pg_url, batches) == _apply(sqlite_url, batches)


def test_rounds_keep_each_keys_rows_in_order() -> None:
    insert = parse_insert(_UPSERT)
    assert insert is not None
    _, columns, tail = insert
    rows = [("a", 1, 1), ("b", 1, 1), ("a", 1, 2), ("a", 2, 1), ("a", 1, 3)]
    assert rounds(rows, columns[:3], tail) == [
        [("a", 1, 1), ("b", 1, 1), ("a", 2, 1)],
        [("a", 1, 2)],
        [("a", 1, 3)],
    ]
    assert parse_insert("INSERT INTO t (a) SELECT ?") is None
    assert parse_insert("INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING") is not None
