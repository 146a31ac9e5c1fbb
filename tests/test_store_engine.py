"""The store's two engines behave the same behind one interface."""

from __future__ import annotations

import pytest
from daozhang.errors import StoreError
from daozhang.store import open_store
from daozhang.store.engine import SqliteStore
from daozhang.store.migrate import Migration, migrate


def test_transactions_commit_and_roll_back(db_url: str) -> None:
    with open_store(db_url) as store:
        with store.transaction() as tx:
            tx.execute(
                "CREATE TABLE t (k INTEGER PRIMARY KEY, v {blob})".format(
                    blob="BLOB" if store.dialect == "sqlite" else "BYTEA"
                )
            )
            tx.execute("INSERT INTO t (k, v) VALUES (?, ?)", (1, b"\x00\xff"))
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.execute("INSERT INTO t (k, v) VALUES (?, ?)", (2, b"x"))
            raise RuntimeError("abort")
        with store.transaction() as tx:
            rows = tx.execute("SELECT k, v FROM t ORDER BY k")
        assert [(k, bytes(v)) for k, v in rows] == [(1, b"\x00\xff")]


def test_migrations_apply_once_and_are_recorded(db_url: str) -> None:
    migrations = [
        Migration(1, "first", "CREATE TABLE m1 (id {id}, payload {blob})"),
        Migration(2, "second", "ALTER TABLE m1 ADD COLUMN note TEXT"),
    ]
    demo = [("demo", migrations)]
    with open_store(db_url) as store:
        assert migrate(store, demo) == ["demo/0001_first", "demo/0002_second"]
        assert migrate(store, demo) == []
        with store.transaction() as tx:
            tx.execute("INSERT INTO m1 (payload, note) VALUES (?, ?)", (b"p", "n"))
            assert tx.execute("SELECT id, note FROM m1") == [(1, "n")]
            recorded = tx.execute("SELECT component, version FROM schema_migrations")
        assert sorted(recorded) == [("demo", 1), ("demo", 2)]


def test_sqlite_is_wal_with_full_sync(sqlite_url: str) -> None:
    with open_store(sqlite_url) as store:
        assert isinstance(store, SqliteStore)
        assert store.durability() == ("wal", 2)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x/y", "unknown database URL"),
        ("sqlite://relative.db", "bad SQLite URL"),
        ("postgresql://nobody:secret@127.0.0.1:1/none", "cannot connect to PostgreSQL"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as excinfo:
        open_store(url)
    assert "secret" not in str(excinfo.value)
