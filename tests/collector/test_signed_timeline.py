"""Issue 29: a keyed device's heartbeats and status are signed; unsigned or forged ones are
quarantined and change nothing, and a recorded one replayed later changes nothing either.
(Before: an unsigned heartbeat claiming 99,998 unsent records reached `fleet status`.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from daozhang.collector.ingest import IngestResult
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.collector.wire import mac_of
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.schema import open_database
from daozhang.store import Store

DEV = "KEYED01"
KEY = bytes(range(32))
EPOCH = 0x1234ABCD
T = 1_780_000_000


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_database(db_url) as s:
        with s.transaction() as tx:
            tx.execute("INSERT INTO devices (dev, hmac_key) VALUES (?, ?)", (DEV, KEY))
        yield s


def q(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        return tx.execute(sql, params)


def signed(body: bytes, key: bytes = KEY) -> bytes:
    return body + mac_of(key, body)


def hb(store: Store, payload: bytes, dev: str = DEV) -> IngestResult:
    with store.transaction() as tx:
        return ingest_heartbeat(tx, dev, payload, float(T), collector="test")


def status(store: Store, payload: bytes, retained: bool = False) -> IngestResult:
    with store.transaction() as tx:
        return ingest_status(tx, DEV, payload, float(T), retained=retained, collector="test")


def test_a_keyed_devices_heartbeat_must_carry_its_mac(store: Store) -> None:
    body = heartbeat_bytes(DEV, t=T, epoch=EPOCH, jrec=3)
    assert hb(store, signed(body)).quarantined == []
    forged = heartbeat_bytes(DEV, t=T + 60, epoch=EPOCH, jrec=99_998, up=61_000)
    assert hb(store, forged).quarantined == ["mac"]  # unsigned
    assert hb(store, signed(forged, b"y" * 32)).quarantined == ["mac"]  # another key
    assert q(store, "SELECT jrec FROM heartbeats") == [(3,)]
    assert q(store, "SELECT reason FROM quarantine") == [("mac",), ("mac",)]


def test_an_unkeyed_devices_heartbeat_needs_no_mac(store: Store) -> None:
    assert hb(store, heartbeat_bytes("PLAIN01", t=T), dev="PLAIN01").quarantined == []
    assert q(store, "SELECT dev FROM heartbeats") == [("PLAIN01",)]


def test_a_heartbeat_replayed_is_stored_once(store: Store) -> None:
    payload = signed(heartbeat_bytes(DEV, t=T, epoch=EPOCH, up=5_000, jrec=3))
    hb(store, payload)
    again = hb(store, payload)
    assert again.duplicates == 1 and again.quarantined == []
    assert q(store, "SELECT COUNT(*) FROM heartbeats") == [(1,)]


def test_a_keyed_devices_status_must_be_signed(store: Store) -> None:
    for payload in (b"online", b"offline", signed(b"online 1.1.1", b"z" * 32)):
        assert status(store, payload).quarantined == ["mac"]
    assert status(store, signed(b"online 1.1.1 extra")).quarantined == ["status"]
    assert q(store, "SELECT COUNT(*) FROM status_events") == [(0,)]
    assert q(store, "SELECT online FROM devices WHERE dev = ?", DEV) == [(0,)]


def test_a_signed_status_counter_only_goes_forward(store: Store) -> None:
    online_1 = signed(b"online %d.3.1" % EPOCH)
    offline_1 = signed(b"offline %d.3.1" % EPOCH)  # its LWT, signed at the same CONNECT
    online_2 = signed(b"online %d.3.2" % EPOCH)
    for payload in (online_1, offline_1, online_2):
        assert status(store, payload).duplicates == 0
    # A recorded `offline` played back later: older than the latest, it changes nothing.
    replayed = status(store, offline_1)
    assert replayed.duplicates == 1 and replayed.quarantined == []
    assert status(store, online_2, retained=True).duplicates == 1  # a resubscribe's retained
    assert q(store, "SELECT online FROM devices WHERE dev = ?", DEV) == [(1,)]
    assert q(store, "SELECT status, session FROM status_events ORDER BY id") == [
        ("online", 1),
        ("offline", 1),
        ("online", 2),
    ]


def test_a_new_epoch_starts_over_and_an_old_one_is_never_taken_again(store: Store) -> None:
    status(store, signed(b"online %d.9.40" % EPOCH))
    reflashed = EPOCH + 1
    assert status(store, signed(b"online %d.1.1" % reflashed)).duplicates == 0  # new journal
    assert status(store, signed(b"offline %d.1.1" % reflashed)).duplicates == 0
    # The old epoch's status, even with a higher counter, is history.
    assert status(store, signed(b"online %d.9.41" % EPOCH)).duplicates == 1
    assert q(store, "SELECT online FROM devices WHERE dev = ?", DEV) == [(0,)]


def test_a_plain_status_still_works_for_an_unkeyed_device(store: Store) -> None:
    with store.transaction() as tx:
        ingest_status(tx, "PLAIN02", b"online", float(T), collector="test")
    assert q(store, "SELECT online FROM devices WHERE dev = 'PLAIN02'") == [(1,)]
