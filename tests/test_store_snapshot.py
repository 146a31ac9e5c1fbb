"""`Store.snapshot()`: correlation and lookup read a store that collectors keep writing. A
snapshot is one consistent view that makes no writer wait (on SQLite `transaction()` is the
one write lock: a correlation read inside it held every collector's commit for as long), and
it refuses writes."""

from __future__ import annotations

import time

import pytest
from daozhang.errors import StoreError
from daozhang.store import open_store


def test_a_snapshot_lets_writers_commit_and_keeps_its_view(db_url: str) -> None:
    with open_store(db_url) as reader, open_store(db_url) as writer:
        with writer.transaction() as tx:
            tx.execute("CREATE TABLE t (n INTEGER)")
            tx.execute("INSERT INTO t (n) VALUES (1)")
        with reader.snapshot() as snap:
            assert snap.execute("SELECT COUNT(*) FROM t") == [(1,)]
            started = time.monotonic()
            with writer.transaction() as tx:  # would wait out busy_timeout behind a write lock
                tx.execute("INSERT INTO t (n) VALUES (2)")
            assert time.monotonic() - started < 5
            assert snap.execute("SELECT COUNT(*) FROM t") == [(1,)]  # still its own view
        assert reader.query("SELECT COUNT(*) FROM t") == [(2,)]


def test_a_snapshot_refuses_writes(db_url: str) -> None:
    with open_store(db_url) as store:
        with store.transaction() as tx:
            tx.execute("CREATE TABLE t (n INTEGER)")
        with store.snapshot() as snap, pytest.raises(StoreError, match="read-only"):
            snap.execute("INSERT INTO t (n) VALUES (1)")
        with store.snapshot() as snap, pytest.raises(StoreError, match="read-only"):
            snap.executemany("INSERT INTO t (n) VALUES (?)", [(1,)])
        assert store.query("SELECT COUNT(*) FROM t") == [(0,)]
