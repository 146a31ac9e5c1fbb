"""Signed batches through the TLS broker and the real collector (its own certificate):
forged MAC, tampered batch, replayed batch, conflicting resend, another device's topic."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cbor2
from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.devicewire import batch_bytes, receipt_body, record_bytes
from daozhang.schema import open_database
from daozhang.security.pki import Pki

from tests.collector.procs import CollectorProcess
from tests.security.mqtt_clients import Peer, connect, subscribe
from tests.waiting import wait_until

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))


def q(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with open_database(db_url, migrate=False) as store, store.transaction() as tx:
        return tx.execute(sql, params)


def _recs(first: int, n: int, mid: str) -> list[bytes]:
    return [
        record_bytes(s, "r", receipt_body(s, mid=mid), t=1_780_000_000 + s)
        for s in range(first, first + n)
    ]


def _acks(peer: Peer) -> list[int]:
    return [cbor2.loads(p)["upto"] for t, p in list(peer.messages) if t.endswith("/ack")]


def test_signed_batches_through_tls_and_the_collector(
    fleet_broker: Mosquitto, fleet_pki: Pki, sqlite_url: str, tmp_path: Path
) -> None:
    with open_database(sqlite_url) as store, store.transaction() as tx:
        tx.execute("INSERT INTO devices (dev, hmac_key) VALUES (?, ?)", ("devA01", KEY_A))
        tx.execute("INSERT INTO devices (dev, hmac_key) VALUES (?, ?)", ("devB02", KEY_B))
    collector = CollectorProcess(
        fleet_broker.url,
        sqlite_url,
        tmp_path,
        "c1",
        "--tls-dir",
        str(fleet_pki.collector_dir("main")),
        "--require-key",
    ).start()
    ca = fleet_pki.ca_cert_path
    a = connect(fleet_broker.port, ca, fleet_pki.device_dir("devA01"), client_id="devA01")
    b = connect(fleet_broker.port, ca, fleet_pki.device_dir("devB02"), client_id="devB02")
    try:
        assert a.connected.is_set() and b.connected.is_set(), (a.refused, b.refused)
        subscribe(a, "dz/v1/devA01/ack")
        subscribe(b, "dz/v1/devB02/ack")
        up_a, up_b = "dz/v1/devA01/up", "dz/v1/devB02/up"
        recs_a = _recs(1, 5, "898310048100001")
        good_a = batch_bytes("devA01", 11, recs_a, key=KEY_A)

        # B's traffic runs before, between and after every attack.
        b_seq = 0

        def good_b() -> None:
            nonlocal b_seq
            batch = batch_bytes("devB02", 22, _recs(b_seq + 1, 3, "898310048100002"), key=KEY_B)
            assert b.publish(up_b, batch) == 0
            b_seq += 3

        good_b()
        assert a.publish(up_a, good_a) == 0
        wait_until(lambda: 5 in _acks(a))
        assert _acks(a)[-1] == 5

        # Replayed batch: identical bytes again -> stored once, acked again.
        acks_before = len(_acks(a))
        assert a.publish(up_a, good_a) == 0
        wait_until(lambda: len(_acks(a)) > acks_before)
        assert _acks(a)[acks_before:] == [5]
        good_b()

        # Forged MAC (signed with another key), tampered batch (one byte flipped after
        # signing), MAC stripped: all quarantined, none moves A's ack.
        recs_next = _recs(6, 3, "898310048100001")
        forged = batch_bytes("devA01", 11, recs_next, key=KEY_B)
        signed = bytearray(batch_bytes("devA01", 11, recs_next, key=KEY_A))
        signed[40] ^= 0x01
        unsigned = batch_bytes("devA01", 11, recs_next)
        for attack in (forged, bytes(signed), unsigned):
            assert a.publish(up_a, attack) == 0
            good_b()
        # A conflicting resend: seq 3 again, authentic MAC, different content.
        other = [record_bytes(3, "r", receipt_body(3, mid="898310048100001", amt=999))]
        assert a.publish(up_a, batch_bytes("devA01", 11, other, key=KEY_A)) == 0
        # A, with its valid certificate, signs a batch for B with B's key (say it leaked):
        # the ACL drops it at the broker; the collector never sees it.
        assert a.publish(up_b, batch_bytes("devB02", 22, _recs(100, 1, "x" * 15), key=KEY_B)) == 135
        good_b()
        wait_until(lambda: len(q(sqlite_url, "SELECT id FROM quarantine")) >= 4)
        wait_until(lambda: b_seq in _acks(b))
    finally:
        a.close()
        b.close()
        collector.stop()

    reasons = sorted(r for (r,) in q(sqlite_url, "SELECT reason FROM quarantine"))
    assert reasons == ["conflict", "mac", "mac", "mac"]
    assert q(sqlite_url, "SELECT COUNT(*), MAX(seq) FROM records WHERE dev = 'devA01'") == [(5, 5)]
    assert q(sqlite_url, "SELECT upto FROM ack_state WHERE dev = 'devA01'") == [(5,)]
    assert q(sqlite_url, "SELECT COUNT(*), MAX(seq) FROM records WHERE dev = 'devB02'") == [
        (b_seq, b_seq)
    ]
    assert max(_acks(a)) == 5 and max(_acks(b)) == b_seq
    stored = q(sqlite_url, "SELECT raw FROM records WHERE dev = 'devA01' AND seq = 3")
    assert bytes(stored[0][0]) == recs_a[2]  # the conflicting content was not stored


def test_two_collectors_on_one_identity_are_told_why_they_keep_dropping(
    fleet_broker: Mosquitto, fleet_pki: Pki, sqlite_url: str, tmp_path: Path
) -> None:
    """The broker gives an identity one session: a certificate copied to a second collector
    makes the two take it from each other; each says why instead of flapping silently."""
    tls = ("--tls-dir", str(fleet_pki.collector_dir("main")))
    first = CollectorProcess(fleet_broker.url, sqlite_url, tmp_path, "c1", *tls).start()
    second = CollectorProcess(fleet_broker.url, sqlite_url, tmp_path, "c2", *tls)
    try:
        second.start(wait=False)
        hint = b"is another collector using the same identity"
        wait_until(lambda: hint in first.log.read_bytes() + second.log.read_bytes(), timeout=60)
    finally:
        second.stop()
        first.stop()
    both = first.log.read_text() + second.log.read_text()
    assert "is another collector using the same identity (--tls-dir)?" in both, both[-2000:]
    assert "daozhang pki issue NAME --collector" in both
    # Each names the identity the broker knows it by, not its --name.
    assert "connected as 'collector.main'" in first.log.read_text()
    assert "connected as 'c1'" not in both and "connected as 'c2'" not in both


def test_a_replaced_key_refuses_a_stolen_terminal_on_the_connection_it_holds(
    fleet_broker: Mosquitto, fleet_pki: Pki, sqlite_url: str, tmp_path: Path
) -> None:
    """Revoking a certificate takes effect at the device's next connect; replacing its key in
    the key store (`daozhang device add DEV --generate --replace`) stops its data at once:
    every later batch fails the MAC, is quarantined, and moves no ack."""
    from daozhang.cli import main as cli_main

    with open_database(sqlite_url) as store, store.transaction() as tx:
        tx.execute("INSERT INTO devices (dev, hmac_key) VALUES (?, ?)", ("devA01", KEY_A))
    tls = ("--tls-dir", str(fleet_pki.collector_dir("main")), "--require-key")
    collector = CollectorProcess(fleet_broker.url, sqlite_url, tmp_path, "c1", *tls).start()
    ca = fleet_pki.ca_cert_path
    a = connect(fleet_broker.port, ca, fleet_pki.device_dir("devA01"), client_id="devA01")
    try:
        assert a.connected.is_set(), a.refused
        subscribe(a, "dz/v1/devA01/ack")
        up = "dz/v1/devA01/up"
        assert (
            a.publish(up, batch_bytes("devA01", 11, _recs(1, 3, "898310048100001"), key=KEY_A)) == 0
        )
        wait_until(lambda: 3 in _acks(a))

        argv = ["device", "add", "devA01", "--db", sqlite_url, "--generate", "--replace"]
        assert cli_main(argv) == 0
        acks_before = len(_acks(a))
        later = batch_bytes("devA01", 11, _recs(4, 3, "898310048100001"), key=KEY_A)
        assert a.publish(up, later) == 0  # the same connection, its old key
        wait_until(lambda: q(sqlite_url, "SELECT reason FROM quarantine") != [])
        time.sleep(1)  # an ack, were one coming, would have come by now
        assert len(_acks(a)) == acks_before
    finally:
        a.close()
        collector.stop()
    assert q(sqlite_url, "SELECT reason FROM quarantine") == [("mac",)]
    assert q(sqlite_url, "SELECT MAX(seq) FROM records WHERE dev = 'devA01'") == [(3,)]
