"""Issue 29, "a terminal owns its receipts" (DESIGN §2.3): another device's receipt with a
natural key first reported by one device is a `conflict` in quarantine, seen in `quarantine
list` and `fleet status`, until an operator moves the terminal; and an older upload arriving
late never puts a receipt's state back."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from daozhang.cli import main
from daozhang.collector.ingest import IngestResult, ingest_batch
from daozhang.collector.keys import add_device, new_key
from daozhang.fleet.status import fleet_status
from daozhang.lab.devicewire import batch_bytes, receipt_body, record_bytes
from daozhang.lab.postgres import TempPostgres
from daozhang.schema import open_database
from daozhang.store import Store

from tests.collector.test_ingest import q

NOW = time.time()
A, B = "TERM-A01", "TERM-B01"
KEY_A, KEY_B = new_key(), new_key()


def _upload(
    store: Store, dev: str, key: bytes, seq: int, at: float, **body: object
) -> IngestResult:
    rec = record_bytes(seq, "r", receipt_body(77, **body), t=int(at))
    payload = batch_bytes(dev, 1, [rec], key=key)
    with store.transaction() as tx:
        return ingest_batch(tx, dev, payload, at, collector="t", require_key=True)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_database(db_url) as s:
        add_device(s, A, KEY_A)
        add_device(s, B, KEY_B)
        yield s


def test_another_devices_receipt_with_the_same_key_is_a_conflict(
    store: Store, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _upload(store, A, KEY_A, 1, NOW - 60)  # A's approved sale
    result = _upload(store, B, KEY_B, 1, NOW - 30, st="declined", amt=1)  # B, its own key
    assert result.quarantined == ["conflict"]
    assert [a.upto for a in result.acks] == [1]  # accounted for: B is not stalled
    assert q(store, "SELECT dev, st, amt FROM receipts") == [(A, "approved", 177)]
    assert q(store, "SELECT dev FROM device_terminals") == [(A,)]
    assert q(store, "SELECT dev, mid, tid FROM devices WHERE dev = ?", B) == [(B, None, None)]
    assert main(["quarantine", "list", "--db", db_url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    (row,) = listed["refusals"]
    assert (row["dev"], row["reason"]) == (B, "conflict") and A in row["detail"]
    rows = {r.dev: r for r in fleet_status(store, NOW)}
    assert rows[B].refused == {"conflict": 1} and "conflict" in rows[B].problem


def test_a_moved_terminal_takes_its_receipts_and_keeps_the_history(
    store: Store, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _upload(store, A, KEY_A, 1, NOW - 600, st="no_response")
    mid, tid = receipt_body(77)["mid"], receipt_body(77)["tid"]
    assert main(["device", "move-terminal", mid, tid, "--to", B, "--db", db_url]) == 0
    assert f"now belongs to {B} (served by {A} before)" in capsys.readouterr().out
    result = _upload(store, B, KEY_B, 1, NOW - 60, st="reversed", rv="98")
    assert (result.quarantined, result.stored) == ([], 1)
    assert q(store, "SELECT dev, st FROM receipts") == [(B, "reversed")]
    assert q(store, "SELECT dev, seq FROM records ORDER BY dev") == [(A, 1), (B, 1)]
    assert q(store, "SELECT from_dev, to_dev FROM terminal_moves") == [(A, B)]


def test_move_terminal_to_an_unknown_device_is_refused(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    open_database(db_url).close()
    assert (
        main(
            [
                "device",
                "move-terminal",
                "898310048161234",
                "10000001",
                "--to",
                "NOPE1",
                "--db",
                db_url,
            ]
        )
        != 0
    )
    assert "daozhang: " in capsys.readouterr().err


def test_an_older_epoch_arriving_late_does_not_put_the_state_back(store: Store) -> None:
    body = receipt_body(77)
    later = record_bytes(4, "r", {**body, "st": "reversed", "rv": "98"}, t=int(NOW - 100))
    earlier = record_bytes(9, "r", {**body, "st": "reversal_pending"}, t=int(NOW - 200))
    with store.transaction() as tx:  # the reflashed terminal's epoch 2 reports first ...
        ingest_batch(tx, A, batch_bytes(A, 2, [later], key=KEY_A), NOW, collector="t")
    with store.transaction() as tx:  # ... then epoch 1's older state, uploaded late
        ingest_batch(tx, A, batch_bytes(A, 1, [earlier], key=KEY_A), NOW + 1, collector="t")
    assert q(store, "SELECT st, epoch, seq FROM receipts") == [("reversed", 2, 4)]
    assert q(store, "SELECT COUNT(*) FROM records") == [(2,)]  # both states kept


def test_two_collectors_racing_for_one_key_never_rewrite_the_first_owners_receipt(
    postgres_server: TempPostgres,
) -> None:
    """Two collectors (two connections) each take one device's upload of the same receipt key
    at once: neither sees the other's uncommitted row, so both think themselves first. On
    PostgreSQL the second upsert waits for the first commit; then it must change nothing.
    (SQLite serialises writers: the second waits for the write lock and then sees the owner.)"""
    db_url = postgres_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    with open_database(db_url) as store:
        add_device(store, A, KEY_A)
        add_device(store, B, KEY_B)
    first_in = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def collector_one() -> None:
        try:
            with open_database(db_url, migrate=False) as mine, mine.transaction() as tx:
                rec = record_bytes(1, "r", receipt_body(77), t=int(NOW - 60))
                ingest_batch(tx, A, batch_bytes(A, 1, [rec], key=KEY_A), NOW - 60, collector="one")
                first_in.set()
                release.wait(10)  # commits when the other one is waiting on the key
        except BaseException as exc:
            errors.append(exc)
            first_in.set()

    one = threading.Thread(target=collector_one)
    one.start()
    assert first_in.wait(10)
    threading.Timer(1.0, release.set).start()  # let the second block on the key first
    with open_database(db_url, migrate=False) as other:
        rec = record_bytes(1, "r", receipt_body(77, st="declined", amt=1), t=int(NOW - 30))
        with other.transaction() as tx:
            ingest_batch(tx, B, batch_bytes(B, 1, [rec], key=KEY_B), NOW - 30, collector="two")
    one.join(10)
    assert not errors, errors
    with open_database(db_url, migrate=False) as store:
        assert q(store, "SELECT dev, st, amt FROM receipts") == [(A, "approved", 177)]
