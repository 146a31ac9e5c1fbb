"""A store that only reads, and never takes the write lock: what the console hands to code
that opens its own transactions (correlation's `load`).

`Store.transaction()` on SQLite is `BEGIN IMMEDIATE`, the database's one write lock, held
until the block ends: correlation reading a large store inside it would hold every
collector's commit for as long. Here each statement of the block runs as its own read
(`Store.query`: on SQLite outside any transaction, on PostgreSQL in a read transaction
ended at once), so nothing waits for the console. The price: the statements of one block
no longer see one snapshot; a row committed between two of them may be seen by the second
only, which a page refreshed a moment later shows right. Writes are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from daozhang.errors import DaozhangError
from daozhang.store import Row, Store


class _ReadTransaction:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.dialect = store.dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            raise DaozhangError(f"the console only reads: refused {sql.split(maxsplit=1)[0]}")
        return self._store.query(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise DaozhangError("the console only reads: refused a write")

    def rowcount(self) -> int:
        return 0


class Reading(Store):
    def __init__(self, store: Store) -> None:
        self._store = store
        self.dialect = store.dialect
        self.url = store.url

    @contextmanager
    def transaction(self) -> Iterator[_ReadTransaction]:
        yield _ReadTransaction(self._store)

    def snapshot(self) -> Any:
        return self._store.snapshot()  # one read-only view, no write lock (Store.snapshot)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._store.query(sql, params)

    def close(self) -> None:
        self._store.close()
