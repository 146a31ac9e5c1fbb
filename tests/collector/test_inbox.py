"""The fast ack path (collector/inbox.py) held to the full path: it acks only what ingest would
account for, and what it stores behind the ack is exactly what ingest stores, on both engines."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import cbor2
import pytest
from daozhang.collector.inbox import Projector, accept, ingest_upload, pending_records
from daozhang.collector.ingest import Ack, IngestResult, ingest_batch
from daozhang.collector.keys import DeviceInfo, add_device, new_key
from daozhang.collector.verify import Upload, Verdict, verify
from daozhang.collector.writer import GroupWriter, read_device
from daozhang.lab.devicewire import batch_bytes, receipt_body, record_bytes
from daozhang.lab.postgres import TempPostgres
from daozhang.schema import open_database
from daozhang.store import Store

from tests.collector.test_ingest import batch, q, receipts

DEV = "T0001"
EPOCH = 0xDEADBEEF
NOW = 1_780_000_000.0
FULL_PAN = "6228480402564890018"  # passes the Luhn check
OPEN = DeviceInfo(None, None, None)  # a device without a key (or not in the key store)


# --- the screen says yes only where the full path accounts for the same seqs ----------------


def screen(device: DeviceInfo, dev: str, payload: bytes, require_key: bool) -> Verdict | None:
    """The verdict when it lets the inbox ack the upload, else None."""
    verdict = verify(Upload(dev, payload), device, require_key=require_key)
    return verdict if verdict.inbox is not None else None


def _full_path_seqs(device: DeviceInfo, payload: bytes, require_key: bool) -> list[int] | None:
    """The seqs the full path would account for from this upload; None if it moves no ack."""
    verdict = verify(Upload(DEV, payload), device, require_key=require_key)
    if verdict.refusal is not None:
        return None
    _, header = verdict.authentic()
    seqs = [r.seq for r in verdict.records]
    return None if None in seqs or header.gaps else seqs  # type: ignore[return-value]


def _agrees(device: DeviceInfo, payload: bytes, require_key: bool = False) -> bool:
    screened = screen(device, DEV, payload, require_key)
    if screened is None or screened.inbox is None:
        return True  # the full path decides alone
    run = screened.inbox
    seqs = _full_path_seqs(device, payload, require_key)
    return seqs == list(range(run.seq_from, run.seq_to + 1))


KEY = bytes(range(32))
KEYED = DeviceInfo(KEY, None, None)
GOOD = batch(receipts(1, 3))


def _with_mid(seq: int, mid: str) -> bytes:
    return record_bytes(seq, "r", receipt_body(seq, mid=mid))


CASES: dict[str, tuple[DeviceInfo, bytes, bool, bool]] = {
    # name: device, payload, require_key, whether the screen takes it
    "plain": (OPEN, GOOD, False, True),
    "keyed, MAC right": (KEYED, batch(receipts(1, 3), key=KEY), False, True),
    "keyed, MAC wrong": (KEYED, batch(receipts(1, 3), key=bytes(32)), False, False),
    "keyed, MAC missing": (KEYED, GOOD, False, False),
    "no key (unknown, or only heard from), keys required": (OPEN, GOOD, True, False),
    "keyed, keys required": (KEYED, batch(receipts(1, 3), key=KEY), True, True),
    "dev of another device": (OPEN, batch_bytes("T0002", EPOCH, receipts(1, 3)), False, False),
    "gaps": (OPEN, batch(receipts(1, 3), gaps=[[4, 9]]), False, False),
    "a hole inside": (OPEN, batch([*receipts(1, 2), *receipts(4, 4)]), False, False),
    "descending": (OPEN, batch(receipts(1, 3)[::-1]), False, False),
    "seq 0": (OPEN, batch([record_bytes(0, "r", receipt_body(0))]), False, False),
    "seq true": (
        OPEN,
        batch([cbor2.dumps({"seq": True, "k": "r", "t": 0, "boot": 1, "up": 0, "b": {}})]),
        False,
        False,
    ),
    "no seq": (OPEN, batch([cbor2.dumps({"k": "r", "b": {}})]), False, False),
    "record not a map": (OPEN, batch([cbor2.dumps([1, 2])]), False, False),
    "no records": (OPEN, batch([]), False, False),
    "full PAN": (OPEN, batch(receipts(1, 2, pan=FULL_PAN)), False, False),
    "other record's mid as PAN": (
        OPEN,
        batch([_with_mid(1, "898310048161234"), *receipts(2, 2, pan="898310048161234")]),
        False,
        True,  # a digit run that is a merchant id of the batch is not held back
    ),
    "version 2": (
        OPEN,
        cbor2.dumps({"v": 2, "dev": DEV, "epoch": 1, "boot": 1, "recs": []}),
        False,
        False,
    ),
    "trailing bytes": (OPEN, GOOD + b"\x00", False, False),
    "too large": (OPEN, batch(receipts(1, 3)) + bytes(9000), False, False),
    "a bad record inside (schema)": (
        OPEN,
        batch([*receipts(1, 1), *receipts(2, 2, typ="bogus")]),
        False,
        True,  # accounted for either way: quarantined when stored
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_screen_takes_only_uploads_the_full_path_acks_the_same(name: str) -> None:
    device, payload, require_key, taken = CASES[name]
    assert (screen(device, DEV, payload, require_key) is not None) == taken
    assert _agrees(device, payload, require_key)


def test_screen_agrees_with_the_full_path_on_mutated_bytes() -> None:
    rng = random.Random(20261207)
    sources = [
        (OPEN, batch(receipts(1, 5))),
        (KEYED, batch(receipts(7, 9), key=KEY)),
        (OPEN, batch([*receipts(1, 2), record_bytes(3, "d", {"ev": "probe", "rtt_ms": 7})])),
    ]
    taken = 0
    for i in range(3000):
        device, source = sources[i % len(sources)]
        data = bytearray(source)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        payload = bytes(data)
        assert _agrees(device, payload), payload.hex()
        taken += screen(device, DEV, payload, False) is not None
    assert taken > 100  # mutations inside the records' bodies are still taken


# --- what is stored behind the ack is what the full path stores -----------------------------


def _uploads() -> list[bytes]:
    """A device's uploads over a bad day: resends, a conflict, bad records, unknown times,
    diag records, a hole and the batch that fills it, a declared gap."""
    first = [*receipts(1, 4), record_bytes(5, "d", {"ev": "link_down", "stage": "tcp", "why": "x"})]
    untimed = [record_bytes(s, "r", receipt_body(s), t=0, up=s * 1000) for s in range(6, 9)]
    return [
        batch(first),
        batch(first),  # a resend: the device missed the ack
        batch(untimed),  # placed from the clock reference of the records before
        batch(receipts(9, 10, typ="bogus")),  # quarantined, and accounted for
        batch(receipts(6, 8, amt=1)),  # the same seqs with other content: conflicts
        batch(receipts(11, 12)),
        batch(receipts(15, 16)),  # a hole at 13-14: the full path, no ack over it
        batch(receipts(17, 18)),
        batch(receipts(13, 14)),  # fills it: the ack jumps to 18
        batch(receipts(19, 20), gaps=[[21, 22]]),  # declared lost
        batch(receipts(23, 25)),
        batch(receipts(23, 25)),
        batch(receipts(26, 27, st="reversed")),
    ]


_TABLES = {
    "records": "SELECT dev, epoch, seq, kind, t, boot, up, placed_t, raw FROM records",
    "receipts": "SELECT mid, tid, bat, trc, typ, amt, st, dev, epoch, seq, t, placed_t"
    " FROM receipts",
    "diag_events": "SELECT dev, epoch, seq, ev, body_json, placed_t FROM diag_events",
    "quarantine": "SELECT dev, epoch, seq, reason, raw FROM quarantine",
    "ack_state": "SELECT dev, epoch, upto, max_seen, unplaced FROM ack_state",
    "declared_gaps": "SELECT dev, epoch, seq_from, seq_to FROM declared_gaps",
    "uploads": "SELECT dev, epoch, seq_from, seq_to, n_records, n_new, n_dup, n_quarantined"
    " FROM uploads",
    "devices": "SELECT dev, mid, tid FROM devices",
}


def _contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: sorted(
            (tuple(bytes(v) if isinstance(v, memoryview) else v for v in row))
            for row in q(store, sql)
        )
        for name, sql in _TABLES.items()
    }


@pytest.fixture
def second_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Another fresh database on the same engine as `db_url`."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'other.db'}"
    server: TempPostgres = request.getfixturevalue("postgres_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


def via_inbox(
    store: Store, payload: bytes, received_at: float, dev: str = DEV
) -> list[IngestResult]:
    """One upload as the collector takes it: screened outside the transaction, then in."""
    screened = screen(read_device(store.query, dev), dev, payload, False)
    w = GroupWriter()
    with store.transaction() as tx:
        results = ingest_upload(
            tx,
            w,
            dev,
            payload,
            received_at,
            collector="test",
            require_key=False,
            verdict=screened,
            inbox=True,
        )
        w.flush(tx)
    return results


def _project_all(store: Store) -> None:
    projector = Projector("test", chunk_records=7)  # small chunks: a device's rows in several
    while projector.chunk(store).records:
        pass


@pytest.mark.parametrize("project_every", [1, 3, 1000])
def test_the_inbox_path_stores_exactly_what_the_full_path_stores(
    db_url: str, second_url: str, project_every: int
) -> None:
    with open_database(db_url) as full, open_database(second_url) as fast:
        full_acks: list[int] = []
        fast_acks: list[int] = []
        accepted = 0
        for i, payload in enumerate(_uploads()):
            received_at = NOW + i
            with full.transaction() as tx:
                result = ingest_batch(tx, DEV, payload, received_at, collector="test")
            full_acks += [a.upto for a in result.acks]
            results = via_inbox(fast, payload, received_at)
            fast_acks += [a.upto for r in results for a in r.acks]
            accepted += sum(r.accepted for r in results)
            if i % project_every == project_every - 1:
                _project_all(fast)
        assert fast_acks == full_acks  # what the device hears, upload by upload
        assert accepted > 0
        _project_all(fast)
        assert q(fast, "SELECT COUNT(*) FROM inbox") == [(0,)]
        assert _contents(fast) == _contents(full)
        assert _contents(full)["quarantine"]  # the day had refusals to compare


def test_an_upload_with_a_hole_waits_for_the_inbox_rows_of_its_device(db_url: str) -> None:
    with open_database(db_url) as store:
        assert [r.accepted for r in via_inbox(store, batch(receipts(1, 5)), NOW)] == [5]
        assert q(store, "SELECT COUNT(*) FROM records") == [(0,)]
        results = via_inbox(store, batch(receipts(8, 9)), NOW + 1)
        # The inbox row is stored first (its ack was sent before), then the hole's batch.
        assert [(r.projected, r.stored, r.acks) for r in results] == [
            (True, 5, []),
            (False, 2, [Ack(DEV, EPOCH, 5)]),
        ]
        assert q(store, "SELECT COUNT(*) FROM inbox") == [(0,)]
        # With a hole in the run, even a batch that continues `upto` takes the full path.
        assert [r.accepted for r in via_inbox(store, batch(receipts(6, 6)), NOW + 2)] == [0]
        assert [r.acks for r in via_inbox(store, batch(receipts(7, 7)), NOW + 3)] == [
            [Ack(DEV, EPOCH, 9)]
        ]
        # The run is whole again: the inbox takes the next one.
        assert [r.accepted for r in via_inbox(store, batch(receipts(10, 12)), NOW + 4)] == [3]


def test_what_was_acked_before_a_crash_is_stored_by_the_next_collector(db_url: str) -> None:
    store = open_database(db_url)
    for i in range(4):
        via_inbox(store, batch(receipts(10 * i + 1, 10 * i + 10)), NOW + i)
    store.close()  # the acking collector dies here: 40 records acked, none stored
    with open_database(db_url) as store:
        with store.transaction() as tx:
            assert pending_records(tx.execute) == 40
        projector = Projector("next", chunk_records=25)
        assert projector.chunk(store).records == 20  # rows are never split: 2 of 10
        assert projector.chunk(store).records == 20
        assert projector.chunk(store).records == 0
        assert q(store, "SELECT COUNT(*), MIN(seq), MAX(seq) FROM records") == [(40, 1, 40)]
        assert q(store, "SELECT upto, max_seen FROM ack_state") == [(40, 40)]


def test_a_key_rotated_after_the_ack_does_not_make_the_acked_batch_a_forgery(
    db_url: str,
) -> None:
    with open_database(db_url) as store:
        old, new = new_key(), new_key()
        add_device(store, DEV, key=old)
        payload = batch(receipts(1, 3), key=old)
        device = DeviceInfo(old, None, None)
        screened = screen(device, DEV, payload, True)
        assert screened is not None
        w = GroupWriter()
        with store.transaction() as tx:
            assert accept(tx, w, screened, NOW, "test") == Ack(DEV, EPOCH, 3)
            w.flush(tx)
        add_device(store, DEV, key=new, replace=True)  # rotated before the projection
        _project_all(store)
        assert q(store, "SELECT COUNT(*) FROM records") == [(3,)]
        assert q(store, "SELECT reason FROM quarantine") == []


def test_a_screened_upload_is_checked_again_when_the_key_changed_meanwhile(db_url: str) -> None:
    with open_database(db_url) as store:
        old = new_key()
        payload = batch(receipts(1, 3), key=old)
        screened = screen(DeviceInfo(old, None, None), DEV, payload, False)
        assert screened is not None
        add_device(store, DEV, key=new_key())  # the key store says otherwise by the commit
        w = GroupWriter()
        with store.transaction() as tx:
            results = ingest_upload(
                tx,
                w,
                DEV,
                payload,
                NOW,
                collector="t",
                require_key=False,
                verdict=screened,
                inbox=True,
            )
            w.flush(tx)
        assert [(r.accepted, r.acks, r.quarantined) for r in results] == [(0, [], ["mac"])]
        assert q(store, "SELECT COUNT(*) FROM inbox") == [(0,)]
