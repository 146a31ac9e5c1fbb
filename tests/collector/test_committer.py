"""The committer's trouble paths: a transient database error retries the whole group; a
message that breaks the group is isolated and quarantined as `internal`, and the others are
committed. The database is real SQLite; the ingest step is scripted to fail on cue."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from daozhang.collector.committer import Committer
from daozhang.collector.ingest import IngestResult
from daozhang.collector.metrics import Metrics
from daozhang.collector.subscription import Incoming
from daozhang.collector.writer import GroupWriter
from daozhang.schema import open_database
from daozhang.store import Store, Transaction


def _message(n: int) -> Incoming:
    return Incoming(f"dz/v1/DEV{n:04d}/hb", f"m{n}".encode(), n, 1, False, 1.0, 0)


class ScriptedIngest:
    """Writes one heartbeat row per message; raises what `failures` says, when it says."""

    def __init__(self, failures: dict[bytes, list[Exception]]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, tx: Transaction, message: Incoming, w: GroupWriter) -> list[IngestResult]:
        self.calls += 1
        pending = self.failures.get(message.payload)
        if pending:
            raise pending.pop(0)
        dev = message.topic.split("/")[2]
        tx.execute(
            "INSERT INTO heartbeats (dev, received_at, body_json) VALUES (?, ?, ?)",
            (dev, message.received_at, message.payload.decode()),
        )
        return [IngestResult("hb", dev)]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_database(url).close()
    return url


def _committer(db_url: str, ingest: ScriptedIngest, metrics: Metrics) -> Committer:
    return Committer(db_url, "c1", ingest, metrics, threading.Event())


def _rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return store.query(sql)


def test_a_transient_error_retries_the_whole_group(db_url: str) -> None:
    metrics = Metrics()
    ingest = ScriptedIngest({b"m2": [sqlite3.OperationalError("database is locked")]})
    committer = _committer(db_url, ingest, metrics)
    try:
        results = committer.commit([_message(1), _message(2), _message(3)])
        rows = _rows(committer.store, "SELECT body_json FROM heartbeats ORDER BY body_json")
    finally:
        committer.close()
    assert [r.dev for r in results] == ["DEV0001", "DEV0002", "DEV0003"]
    assert rows == [("m1",), ("m2",), ("m3",)]  # the failed try left nothing behind
    assert metrics.commit_retries == 1


def test_a_message_that_breaks_the_group_is_quarantined_and_the_rest_committed(
    db_url: str,
) -> None:
    bug = KeyError("a bug in ingest")
    ingest = ScriptedIngest({b"m2": [bug, bug]})  # fails in the group and alone
    committer = _committer(db_url, ingest, Metrics())
    try:
        results = committer.commit([_message(1), _message(2), _message(3)])
        rows = _rows(committer.store, "SELECT body_json FROM heartbeats ORDER BY body_json")
        quarantined = _rows(committer.store, "SELECT topic, reason, detail, raw FROM quarantine")
    finally:
        committer.close()
    assert [r.quarantined for r in results] == [[], ["internal"], []]
    assert rows == [("m1",), ("m3",)]
    ((topic, reason, detail, raw),) = quarantined
    assert (topic, reason, bytes(raw)) == ("dz/v1/DEV0002/hb", "internal", b"m2")
    assert "a bug in ingest" in str(detail)


def test_a_transient_error_while_isolating_is_retried_too(db_url: str) -> None:
    locked = sqlite3.OperationalError("database is locked")
    ingest = ScriptedIngest({b"m1": [ValueError("bug"), locked]})  # bug once, then a lock
    committer = _committer(db_url, ingest, Metrics())
    try:
        results = committer.commit([_message(1), _message(2)])
        rows = _rows(committer.store, "SELECT body_json FROM heartbeats ORDER BY body_json")
    finally:
        committer.close()
    assert [r.quarantined for r in results] == [[], []]  # m1 went through in the end
    assert rows == [("m1",), ("m2",)]
