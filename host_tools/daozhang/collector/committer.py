"""The collector's database side: one transaction per group of messages, through any trouble.

A transient error (a lost connection, a lock timeout, a PostgreSQL deadlock) is retried with
a new connection, as often as it takes, since the messages stay un-PUBACKed until their
commit. Any other error means one message breaks the group: the group is then written one
message at a time, and the message that still fails is quarantined as `internal` (a bug to
fix, never a reason to stall every device behind it).

The committer also keeps the key store as its transactions last read it, for the checks the
collector makes before a transaction (`prepare.py`, `inbox.screen`): those are proposals,
and ingest redoes them when the key changed meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from daozhang.collector.ingest import IngestResult
from daozhang.collector.metrics import Metrics
from daozhang.collector.prepare import DeviceInfo
from daozhang.collector.quarantine import quarantine
from daozhang.collector.subscription import Incoming, log
from daozhang.collector.writer import GroupWriter, read_device
from daozhang.errors import StoreError
from daozhang.store import Store, Transaction, is_transient, open_store
from daozhang.store.engine import SqliteStore

# More device ids than this in the key store cache (a flood of unknown ones) starts it over.
_MAX_CACHED_DEVICES = 100_000

# One message in a transaction -> its results (an upload's come after those of the inbox
# rows it had to wait for).
IngestOne = Callable[[Transaction, Incoming, GroupWriter], list[IngestResult]]


def ensure_durable(store: Store) -> None:
    """Refuse to ack from a database that could lose a commit on power loss."""
    if isinstance(store, SqliteStore):
        mode, sync = store.durability()
        if mode != "wal" or sync < 2:
            raise StoreError(
                f"SQLite at {store.path} runs journal_mode={mode}, synchronous={sync}:"
                " acks need WAL with synchronous=FULL (2) or EXTRA (3)"
            )


class Committer:
    """The committer thread's connection and the transactions it runs (one thread only)."""

    def __init__(
        self,
        db_url: str,
        name: str,
        ingest_one: IngestOne,
        metrics: Metrics,
        stopping: threading.Event,
    ) -> None:
        self._db_url = db_url
        self._name = name
        self._ingest_one = ingest_one
        self._metrics = metrics
        self._stopping = stopping
        self._devices: dict[str, DeviceInfo] = {}
        self.store: Store = open_store(db_url, migrate=False)
        ensure_durable(self.store)

    def close(self) -> None:
        self.store.close()

    def device(self, dev: str) -> DeviceInfo:
        """The key store's entry for `dev`, as last read (read now if never)."""
        info = self._devices.get(dev)
        if info is None:
            info = self._devices[dev] = read_device(self.store.query, dev)
        return info

    def commit(self, group: list[Incoming]) -> list[IngestResult]:
        """The group's results, once they are durable: retried or isolated as needed."""
        try:
            return self._write(group)
        except Exception as exc:  # noqa: BLE001 - any failure: retry or isolate, never stall
            return self._recover(group, exc)

    def _write(self, group: list[Incoming]) -> list[IngestResult]:
        results: list[IngestResult] = []
        writer = GroupWriter()
        with self.store.transaction() as tx:
            writer.load_devices(tx, {dev for m in group if (dev := m.upload_dev)})
            for message in group:
                results += self._ingest_one(tx, message, writer)
            writer.flush(tx)
        if len(self._devices) > _MAX_CACHED_DEVICES:
            self._devices = {}
        self._devices.update(writer.devices)
        return results

    def _recover(self, group: list[Incoming], exc: Exception) -> list[IngestResult]:
        """The group's transaction failed: retry it, or isolate the message that breaks it."""
        while is_transient(exc):
            self._metrics.commit_retries += 1  # only this thread writes it
            log(f"database error, retrying {len(group)} messages: {exc}")
            time.sleep(0.2)
            self.reopen()
            # Sorted by device: two collectors then lock ack rows in the same order.
            group.sort(key=lambda m: m.topic)
            try:
                return self._write(group)
            except Exception as again:  # noqa: BLE001 - as above
                exc = again
        log(f"a message broke the group commit ({exc!r}); committing one by one")
        return [result for message in group for result in self._write_alone(message)]

    def _write_alone(self, message: Incoming) -> list[IngestResult]:
        while True:
            try:
                return self._write([message])
            except Exception as exc:  # noqa: BLE001 - a poison message goes to quarantine
                if is_transient(exc):
                    time.sleep(0.2)
                    self.reopen()
                    continue
                return [self._quarantine_internal(message, exc)]

    def _quarantine_internal(self, message: Incoming, exc: Exception) -> IngestResult:
        """A message that makes ingest fail is a bug to fix, never a reason to stall."""
        log(f"quarantined a message on {message.topic[:80]} after an internal error: {exc!r}")
        with self.store.transaction() as tx:
            quarantine(
                tx,
                dev=None,
                topic=message.topic[:200],
                reason="internal",
                detail=repr(exc),
                raw=message.payload,
                received_at=message.received_at,
                collector=self._name,
            )
        return IngestResult(channel="?", dev=None, quarantined=["internal"])

    def reopen(self) -> None:
        """A new connection after a transient error, waiting while the database is away."""
        try:
            self.store.close()
        except Exception as exc:  # noqa: BLE001 - it may be gone already; a new one is opened
            log(f"closing the broken database connection: {exc!r}")
        while not self._stopping.is_set():
            try:
                self.store = open_store(self._db_url, migrate=False)
                return
            except StoreError as exc:
                log(f"database unavailable, retrying: {exc}")
                time.sleep(1.0)
        raise StoreError("stopping while the database is unavailable")
