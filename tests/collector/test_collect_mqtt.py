"""The collector against the real Mosquitto, on SQLite and PostgreSQL, with device-like peers."""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.devicewire import (
    batch_bytes,
    heartbeat_bytes,
    receipt_body,
    record_bytes,
)
from daozhang.lab.publisher import DevicePublisher, run_all
from daozhang.ports import free_port
from daozhang.schema import open_database

from tests.collector.procs import CollectorProcess
from tests.collector.streams import stream
from tests.waiting import wait_until

FULL_PAN = "6228480402564890018"


def q(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with open_database(db_url, migrate=False) as store, store.transaction() as tx:
        return tx.execute(sql, params)


@pytest.fixture
def collector(mosquitto: Mosquitto, db_url: str, tmp_path: Path) -> Iterator[CollectorProcess]:
    proc = CollectorProcess(mosquitto.url, db_url, tmp_path).start()
    try:
        yield proc
    finally:
        proc.stop()


class AckListener:
    """Watches one device's ack topic the way the device would."""

    def __init__(self, pub: DevicePublisher) -> None:
        self.pub = pub

    def wait_upto(self, upto: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pub.acked < upto:
            time.sleep(0.02)
        assert self.pub.acked == upto


def test_duplicates_are_stored_once_and_acked_again(
    mosquitto: Mosquitto, db_url: str, collector: CollectorProcess
) -> None:
    recs = stream(20)
    pub = DevicePublisher(mosquitto.url, "DUP1", 5, recs).start()
    try:
        first = batch_bytes("DUP1", 5, recs[:10])
        for _ in range(3):  # the same batch three times
            pub.publish_raw("up", first)
        AckListener(pub).wait_upto(10)
        pub.publish_raw("up", batch_bytes("DUP1", 5, recs[5:20]))  # 6..10 resent inside
        AckListener(pub).wait_upto(20)
        # Every batch so far is committed (2 x 10 + 5 duplicates) and its acks have had time to
        # arrive: batches in one commit share an ack, so acks cannot be counted per batch; the
        # next check needs an ack that only the next batch can cause.
        dups = "SELECT SUM(n_dup) FROM uploads"
        assert wait_until(lambda: q(db_url, dups) == [(25,)]), q(db_url, dups)
        time.sleep(1)
        acks_before = pub.acks_seen
        pub.publish_raw("up", first)  # an old batch again: acked again, at the full upto
        assert wait_until(lambda: pub.acks_seen > acks_before), "the old batch was not acked"
        assert pub.acked == 20
        assert wait_until(lambda: q(db_url, dups) == [(35,)]), q(db_url, dups)
    finally:
        pub.stop()
    assert q(db_url, "SELECT COUNT(*), COUNT(DISTINCT seq) FROM records") == [(20, 20)]
    assert q(db_url, "SELECT COUNT(*) FROM records WHERE kind = 'r'") == [(18,)]


def test_out_of_order_batches_are_acked_only_up_to_the_contiguous_seq(
    mosquitto: Mosquitto, db_url: str, collector: CollectorProcess
) -> None:
    recs = stream(30)
    pub = DevicePublisher(mosquitto.url, "OOO1", 9, recs).start()
    try:
        for n, part in enumerate((recs[20:30], recs[10:20]), start=1):
            pub.publish_raw("up", batch_bytes("OOO1", 9, part))
            deadline = time.monotonic() + 10
            while pub.acks_seen < n and time.monotonic() < deadline:
                time.sleep(0.02)
            assert pub.acks_seen == n and pub.acked == 0
        pub.publish_raw("up", batch_bytes("OOO1", 9, recs[0:10]))
        AckListener(pub).wait_upto(30)
    finally:
        pub.stop()


def test_bad_inputs_are_quarantined_while_good_traffic_continues(
    mosquitto: Mosquitto, db_url: str, collector: CollectorProcess
) -> None:
    key = bytes(range(32))
    with open_database(db_url, migrate=False) as store, store.transaction() as tx:
        tx.execute("INSERT INTO devices (dev, hmac_key) VALUES (?, ?)", ("KEYD", key))
    good = [DevicePublisher(mosquitto.url, f"GOOD{i}", 1, stream(300, i)).start() for i in range(3)]
    signed = DevicePublisher(mosquitto.url, "KEYD", 3, stream(100, 9), key=key).start()
    bad = DevicePublisher(mosquitto.url, "EVIL", 7, []).start()
    rec = record_bytes(1, "r", receipt_body(1))
    attacks = [
        ("up", b"\xff\x00garbage", None, "cbor"),
        # Over the collector's limit (8 KB + MAC) yet under the broker's packet limit, which drops
        # anything larger before a collector sees it.
        ("up", b"\x00" * 8240, None, "too_large"),
        ("up", batch_bytes("EVIL", 7, [rec])[:-3], None, "cbor"),
        (
            "up",
            cbor2.dumps({"v": 9, "dev": "EVIL", "epoch": 7, "boot": 1, "recs": []}),
            None,
            "version",
        ),
        ("up", batch_bytes("GOOD0", 1, [rec]), None, "dev_mismatch"),
        ("up", batch_bytes("KEYD", 3, [rec], key=b"k" * 32), "KEYD", "mac"),
        ("up", batch_bytes("KEYD", 3, [rec]), "KEYD", "mac"),
        (
            "up",
            batch_bytes("EVIL", 7, [record_bytes(1, "r", receipt_body(1, pan=FULL_PAN))]),
            None,
            "pan_unmasked",
        ),
        ("up", batch_bytes("EVIL", 7, [record_bytes(2, "r", {"mid": "x"})]), None, "record_schema"),
        ("hb", b"\x01\x02", None, "cbor"),
        ("hb", heartbeat_bytes("EVIL", link="sideways"), None, "hb_schema"),
        ("status", b"maybe", None, "status"),
        (
            "up",
            batch_bytes("EVIL", 7, [record_bytes(3, "d", {"ev": "lost", "from": 9, "to": 1})]),
            None,
            "record_schema",
        ),
    ]
    try:
        threads = threading.Thread(target=run_all, args=([*good, signed], 60))
        threads.start()
        for channel, payload, dev, _ in attacks:
            bad.publish_raw(channel, payload, dev=dev)
            time.sleep(0.05)
        threads.join(70)
        assert all(p.done() for p in [*good, signed])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if len(q(db_url, "SELECT id FROM quarantine")) >= len(attacks):
                break
            time.sleep(0.1)
    finally:
        for p in [*good, signed, bad]:
            p.stop()
    reasons = sorted(r for (r,) in q(db_url, "SELECT reason FROM quarantine"))
    assert reasons == sorted(reason for *_, reason in attacks)
    assert q(db_url, "SELECT COUNT(*) FROM quarantine WHERE detail = ''") == [(0,)]
    for dev, n in [("GOOD0", 300), ("GOOD1", 300), ("GOOD2", 300), ("KEYD", 100)]:
        assert q(db_url, "SELECT COUNT(*), MAX(seq) FROM records WHERE dev = ?", dev) == [(n, n)]
    # Forged and wrong-topic batches never moved an ack; the authentic bad records did.
    assert q(db_url, "SELECT upto FROM ack_state WHERE dev = 'KEYD'") == [(100,)]
    assert q(db_url, "SELECT upto FROM ack_state WHERE dev = 'EVIL'") == [(3,)]
    assert q(db_url, "SELECT COUNT(*) FROM records WHERE dev = 'EVIL'") == [(0,)]


def _scrape_until(port: int, wanted: str, seconds: float = 10) -> str:
    """The collector's /metrics page, once it holds `wanted` (or at the deadline)."""
    deadline = time.monotonic() + seconds
    while True:
        url = f"http://127.0.0.1:{port}/metrics"
        text: str = urllib.request.urlopen(url, timeout=10).read().decode()
        if wanted in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def test_heartbeats_status_and_lwt_make_a_timeline(
    mosquitto: Mosquitto, db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    proc = CollectorProcess(
        mosquitto.url, db_url, tmp_path, "c1", "--metrics-port", str(port)
    ).start()
    pub = DevicePublisher(mosquitto.url, "HB01", 1, stream(10)).start()
    try:
        assert pub.run(20)
        pub.publish_raw(
            "hb",
            heartbeat_bytes(
                "HB01",
                t=1_780_000_100,
                jrec=42,
                link="up",
                sig={"rat": "lte", "rsrp": -101},
                recon=2,
            ),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not q(db_url, "SELECT jrec FROM heartbeats"):
            time.sleep(0.05)
        assert q(db_url, "SELECT jrec, link, recon FROM heartbeats") == [(42, "up", 2)]
        assert q(db_url, "SELECT online FROM devices WHERE dev = 'HB01'") == [(1,)]
        # The records were acked from the inbox: they count as stored once a pause in the
        # uploads (100 ms) has let the collector store them.
        text = _scrape_until(port, "dz_collector_records_total 10")
        assert 'dz_collector_messages_total{channel="up"}' in text
        assert "dz_collector_records_total 10" in text
        assert "dz_devices_backlog_records 42" in text
        assert "dz_collector_commit_seconds_count" in text
        pub.stop(clean=False)  # the link dies: the broker publishes the LWT
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if q(db_url, "SELECT online FROM devices WHERE dev = 'HB01'") == [(0,)]:
                break
            time.sleep(0.1)
        assert q(db_url, "SELECT status FROM status_events WHERE dev = 'HB01' ORDER BY id") == [
            ("online",),
            ("offline",),
        ]
        assert proc.terminate() == 0  # SIGTERM: finish the group, disconnect, exit 0
    finally:
        proc.stop()


def test_a_new_device_is_acked_from_the_inbox_after_its_first_upload(
    mosquitto: Mosquitto, db_url: str, tmp_path: Path
) -> None:
    """The first commit puts the device in `devices`; that must not change what the collector
    checked the next uploads with (a key store cache once made them all take the full path)."""
    port = free_port()
    proc = CollectorProcess(
        mosquitto.url, db_url, tmp_path, "c1", "--metrics-port", str(port)
    ).start()
    # window 1: each batch waits for the previous one's ack, so each is its own group.
    pub = DevicePublisher(mosquitto.url, "NEW01", 1, stream(60), per_batch=10, window=1)
    try:
        assert pub.start().run(20)
        text = _scrape_until(port, "dz_collector_records_total 60")
    finally:
        pub.stop()
        proc.stop()
    assert q(db_url, "SELECT COUNT(*) FROM records WHERE dev = 'NEW01'") == [(60,)]
    accepted = [
        int(float(line.split()[1]))
        for line in text.splitlines()
        if line.startswith("dz_collector_inbox_accepted_total ")
    ]
    assert accepted and accepted[0] >= 60  # every batch; a resend would add its records


def _durable_seqs(db_url: str, dev: str, upto: int) -> list[int]:
    """The seqs up to `upto` the store holds durably: stored, or acked from the inbox."""
    found = q(db_url, "SELECT seq FROM records WHERE dev = ? AND seq <= ?", dev, upto)
    stored = [int(s) for (s,) in found]
    kept = q(db_url, "SELECT seq_from, seq_to FROM inbox WHERE dev = ?", dev)
    return sorted({*stored, *(s for a, b in kept for s in range(int(a), int(b) + 1) if s <= upto)})


def _inbox_stored(db_url: str) -> bool:
    """Whether a running collector stores what it acked from the inbox once uploads pause."""
    return wait_until(lambda: q(db_url, "SELECT COUNT(*) FROM inbox") == [(0,)], 30)


def _check_exactly_once(db_url: str, pubs: list[DevicePublisher]) -> None:
    assert q(db_url, "SELECT COUNT(*) FROM inbox") == [(0,)]
    for pub in pubs:
        rows = q(db_url, "SELECT seq, raw FROM records WHERE dev = ? ORDER BY seq", pub.dev)
        # Every record the device saw acked is stored, byte for byte; nothing else is.
        assert [int(s) for s, _ in rows] == list(range(1, len(pub.records) + 1))
        assert [bytes(r) for _, r in rows] == pub.records
        receipts = sum(1 for r in pub.records if cbor2.loads(r)["k"] == "r")
        assert q(db_url, "SELECT COUNT(*) FROM records WHERE kind = 'r' AND dev = ?", pub.dev) == [
            (receipts,)
        ]
        assert q(db_url, "SELECT COUNT(*) FROM receipts WHERE dev = ?", pub.dev) == [(receipts,)]
    assert q(db_url, "SELECT reason, COUNT(*) FROM quarantine GROUP BY reason") == []


@pytest.mark.slow
def test_kill_9_at_30_random_moments_loses_and_duplicates_nothing(
    mosquitto: Mosquitto, db_url: str, tmp_path: Path
) -> None:
    rng = random.Random(20261122)
    pubs = [
        DevicePublisher(
            mosquitto.url,
            f"KILL{i}",
            1000 + i,
            stream(2500, i),
            per_batch=10,
            window=4,
            ack_timeout_s=1.0,
        )
        for i in range(4)
    ]
    proc = CollectorProcess(mosquitto.url, db_url, tmp_path).start()
    for p in pubs:
        p.start()
    done = threading.Event()
    result: list[bool] = []
    runner = threading.Thread(target=lambda: (result.append(run_all(pubs, 240)), done.set()))
    runner.start()
    kills = 0
    kills_with_inbox = 0  # kills that left acked records in the inbox for the next start
    try:
        while kills < 30:
            # Random moments spread over the whole stream: kill k falls somewhere in the
            # k-th of 31 equal stretches of acked records, a few ms after that point.
            target = rng.randrange(kills * 320 + 1, (kills + 1) * 320)
            while sum(p.acked for p in pubs) < target and not done.is_set():
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
            assert sum(p.acked for p in pubs) < 10_000, "the stream ended before kill {kills}"
            proc.kill()
            kills += 1
            # Everything a device has seen acked must already be durable at each kill:
            # stored, or kept whole in the inbox (stored from there by the next collector).
            for p in pubs:
                acked = p.acked
                assert _durable_seqs(db_url, p.dev, acked) == list(range(1, acked + 1))
            kills_with_inbox += q(db_url, "SELECT COUNT(*) FROM inbox") != [(0,)]
            proc.start()
        runner.join(250)
        assert result == [True], [(p.dev, p.acked) for p in pubs]
        assert _inbox_stored(db_url)
    finally:
        proc.stop()
        for p in pubs:
            p.stop()
    assert kills == 30 and proc.starts == 31
    progress = sum(p.acked for p in pubs)
    assert progress == 10_000
    print(f"kills that left records in the inbox: {kills_with_inbox} of 30")
    assert kills_with_inbox > 0  # or this test did not exercise the fast ack path's recovery
    _check_exactly_once(db_url, pubs)


@pytest.mark.slow
def test_two_collectors_one_killed_for_good_lose_and_duplicate_nothing(
    mosquitto: Mosquitto, db_url: str, tmp_path: Path
) -> None:
    a = CollectorProcess(mosquitto.url, db_url, tmp_path, "ca", "--session-expiry", "10").start()
    b = CollectorProcess(mosquitto.url, db_url, tmp_path, "cb", "--session-expiry", "10").start()
    pubs = [
        DevicePublisher(
            mosquitto.url,
            f"PAIR{i}",
            77 + i,
            stream(1000, i),
            per_batch=10,
            window=4,
            ack_timeout_s=1.0,
        )
        for i in range(4)
    ]
    for p in pubs:
        p.start()
    result: list[bool] = []
    runner = threading.Thread(target=lambda: result.append(run_all(pubs, 120)))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while sum(p.acked for p in pubs) < 1000 and time.monotonic() < deadline:
            time.sleep(0.02)
        a.kill()  # mid-stream, never restarted: b stores what a left in the inbox
        runner.join(130)
        assert result == [True], [(p.dev, p.acked) for p in pubs]
        assert _inbox_stored(db_url)
    finally:
        a.stop()
        b.stop()
        for p in pubs:
            p.stop()
    collectors = {c for (c,) in q(db_url, "SELECT DISTINCT collector FROM uploads")}
    assert collectors == {"ca", "cb"}
    _check_exactly_once(db_url, pubs)


def test_the_collector_is_bounded_in_bytes(db_url: str, tmp_path: Path) -> None:
    """Issue 29: CONNECT announces a Maximum Packet Size, so the broker never hands the
    collector a huge message (60 x 10 MB took it to 685 MB); an oversized upload small enough
    to keep as evidence still arrives and is quarantined as `too_large`. The collector's own
    bound, so a broker without the project's packet limit (a cluster configured otherwise):
    with the limit, the broker drops the publisher before any collector could see it."""
    broker = Mosquitto(workdir=tmp_path / "open-broker", max_packet_size=0).start()
    collector = CollectorProcess(broker.url, db_url, tmp_path).start()
    pub = DevicePublisher(broker.url, "BIGS", 1, stream(20)).start()
    try:
        for _ in range(3):
            pub.publish_raw("up", b"\x00" * (2 * 2**20))  # dropped by the broker, unseen
        pub.publish_raw("up", b"\x01" * 9000)
        assert run_all([pub], 30)
        small = "SELECT COUNT(*) FROM quarantine WHERE LENGTH(raw) = 9000"
        assert wait_until(lambda: q(db_url, small) == [(1,)], 15)
        assert q(db_url, "SELECT reason, LENGTH(raw) FROM quarantine") == [("too_large", 9000)]
    finally:
        pub.stop()
        collector.stop()
        broker.stop()


def test_the_local_queue_is_bounded_in_bytes() -> None:
    from daozhang.collector.subscription import ByteBoundedQueue, Incoming

    stopping = threading.Event()
    queue = ByteBoundedQueue(100, 10_000, stopping)

    def message(size: int) -> Incoming:
        return Incoming("dz/v1/BIGS/up", b"x" * size, 1, 1, False, 0.0, 1)

    assert queue.put(message(60_000))  # one message always fits, however large
    putting = threading.Thread(target=queue.put, args=(message(100),))
    putting.start()
    putting.join(0.3)
    assert putting.is_alive()  # waits: the queue is over its bytes
    assert queue.get(1) is not None
    putting.join(2)
    assert not putting.is_alive() and queue.bytes == 100
