"""The collector's database side: one transaction per group of messages, through any trouble.

A transient error (a lost connection, a lock timeout, a PostgreSQL deadlock, a full disk, an
I/O error) is retried with a new connection, as often as it takes and backing off up to a few
seconds, since the messages stay un-PUBACKed until their commit; the log and `/metrics` say
why. Any other error means one message breaks the group: the group is then written one
message at a time; an upload that still fails is stored record by record, the record that
breaks quarantined alone (`ingest_record_by_record`), and any other message that still fails
is quarantined as `internal` (a bug to fix, never a reason to stall every device behind it).

The committer also keeps the key store as its transactions last read it, for the verdicts
the collector reaches before a transaction (`verify.py`): ingest judges again when the key
changed meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from daozhang.collector.ingest import IngestResult
from daozhang.collector.keys import DeviceInfo
from daozhang.collector.log import log
from daozhang.collector.metrics import Metrics
from daozhang.collector.quarantine import quarantine
from daozhang.collector.wire import upload_device
from daozhang.collector.writer import GroupWriter, read_device
from daozhang.errors import StoreError
from daozhang.store import Store, Transaction, is_transient, open_store
from daozhang.store.engine import SqliteStore

# More device ids than this in the key store cache (a flood of unknown ones) starts it over.
_MAX_CACHED_DEVICES = 100_000


class Message(Protocol):
    """What the committer needs of a message: where it came, its bytes, when."""

    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def received_at(self) -> float: ...


M = TypeVar("M", bound=Message)

# One message in a transaction -> its results (an upload's come after those of the inbox
# rows it had to wait for).
IngestOne = Callable[[Transaction, M, GroupWriter], list[IngestResult]]
# A message that breaks its own transaction, taken apart (an upload: record by record).
IngestApart = Callable[[Store, M], list[IngestResult]]

_FIRST_WAIT_S = 0.2
_LONGEST_WAIT_S = 5.0


def ensure_durable(store: Store) -> None:
    """Refuse to ack from a database that could lose a commit on power loss."""
    if isinstance(store, SqliteStore):
        mode, sync = store.durability()
        if mode != "wal" or sync < 2:
            raise StoreError(
                f"SQLite at {store.path} runs journal_mode={mode}, synchronous={sync}:"
                " acks need WAL with synchronous=FULL (2) or EXTRA (3)"
            )


class Committer(Generic[M]):
    """The committer thread's connection and the transactions it runs (one thread only)."""

    def __init__(
        self,
        db_url: str,
        name: str,
        ingest_one: IngestOne[M],
        metrics: Metrics,
        stopping: threading.Event,
        ingest_apart: IngestApart[M] | None = None,
    ) -> None:
        self._db_url = db_url
        self._name = name
        self._ingest_one = ingest_one
        self._ingest_apart = ingest_apart
        self._metrics = metrics
        self._stopping = stopping
        self._devices: dict[str, DeviceInfo] = {}
        self._waited = 0.0  # seconds waited for the database in the current spell of errors
        self.store: Store = open_store(db_url)
        ensure_durable(self.store)

    def close(self) -> None:
        self.store.close()

    def device(self, dev: str) -> DeviceInfo:
        """The key store's entry for `dev`, as last read (read now if never)."""
        info = self._devices.get(dev)
        if info is None:
            info = self._devices[dev] = read_device(self.store.query, dev)
        return info

    def commit(self, group: list[M]) -> list[IngestResult]:
        """The group's results, once they are durable: retried or isolated as needed."""
        try:
            return self._write(group)
        except Exception as exc:  # noqa: BLE001 - any failure: retry or isolate, never stall
            return self._recover(group, exc)

    def _write(self, group: list[M]) -> list[IngestResult]:
        results: list[IngestResult] = []
        writer = GroupWriter()
        with self.store.transaction() as tx:
            writer.load_devices(tx, {dev for m in group if (dev := upload_device(m.topic))})
            for message in group:
                results += self._ingest_one(tx, message, writer)
            writer.flush(tx)
        if len(self._devices) > _MAX_CACHED_DEVICES:
            self._devices = {}
        self._devices.update(writer.devices)
        self.recovered()
        return results

    def _recover(self, group: list[M], exc: Exception) -> list[IngestResult]:
        """The group's transaction failed: retry it, or isolate the message that breaks it."""
        while is_transient(exc):
            self._metrics.commit_retries += 1  # only this thread writes it
            self.wait(exc, f"retrying {len(group)} messages")
            # Sorted by device: two collectors then lock ack rows in the same order.
            group.sort(key=lambda m: m.topic)
            try:
                return self._write(group)
            except Exception as again:  # noqa: BLE001 - as above
                exc = again
        log(f"a message broke the group commit ({exc!r}); committing one by one")
        return [result for message in group for result in self._write_alone(message)]

    def _write_alone(self, message: M) -> list[IngestResult]:
        while True:
            try:
                return self._write([message])
            except Exception as exc:  # noqa: BLE001 - a poison message is taken apart
                if is_transient(exc):
                    self.wait(exc, "retrying a message alone")
                    continue
                failure: Exception = exc
            try:
                if self._ingest_apart is not None:
                    results = self._ingest_apart(self.store, message)
                    self.recovered()
                    return results
            except Exception as exc:  # noqa: BLE001 - what still breaks goes to quarantine
                if is_transient(exc):
                    self.wait(exc, "retrying a message record by record")
                    continue
                failure = exc
            return [self._quarantine_internal(message, failure)]

    def _quarantine_internal(self, message: M, exc: Exception) -> IngestResult:
        """A message that makes ingest fail is a bug to fix, never a reason to stall."""
        log(f"quarantined a message on {message.topic[:80]} after an internal error: {exc!r}")
        while True:
            try:
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
                self.recovered()
                return IngestResult(channel="?", dev=None, quarantined=["internal"])
            except Exception as again:
                if not is_transient(again):
                    raise
                self.wait(again, "retrying a quarantine row")

    def wait(self, exc: Exception, doing: str) -> None:
        """Back off after an engine error (lock, full disk, I/O, lost link), say why in the
        log and the metrics, and reopen the connection; nothing is given up meanwhile."""
        delay = min(_LONGEST_WAIT_S, max(_FIRST_WAIT_S, self._waited))
        self._metrics.store_trouble(exc, self._waited)
        log(f"database error, {doing} in {delay:g} s: {exc}")
        time.sleep(delay)
        self._waited += delay
        self.reopen()

    def recovered(self) -> None:
        if self._waited:
            log(f"database writable again after {self._waited:.1f} s of errors")
            self._waited = 0.0
            self._metrics.store_trouble(None, 0.0)

    def reopen(self) -> None:
        """A new connection after a transient error, waiting while the database is away."""
        try:
            self.store.close()
        except Exception as exc:  # noqa: BLE001 - it may be gone already; a new one is opened
            log(f"closing the broken database connection: {exc!r}")
        while not self._stopping.is_set():
            try:
                self.store = open_store(self._db_url)
                return
            except Exception as exc:  # unreachable, full or locked: wait
                if not (isinstance(exc, StoreError) or is_transient(exc)):
                    raise
                log(f"database unavailable, retrying: {exc}")
                time.sleep(1.0)
        raise StoreError("stopping while the database is unavailable")
