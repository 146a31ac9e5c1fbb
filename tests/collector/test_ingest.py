"""ingest_batch on both engines: exactly-once storage, quarantine, and what the ack may say."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cbor2
import pytest
from daozhang.collector.ingest import Ack, IngestResult, ingest_batch
from daozhang.collector.timeline import ingest_heartbeat
from daozhang.collector.verify import Upload, verify
from daozhang.collector.writer import read_device
from daozhang.lab.devicewire import (
    batch_bytes,
    heartbeat_bytes,
    receipt_body,
    record_bytes,
)
from daozhang.schema import open_database
from daozhang.security.pan import luhn_ok
from daozhang.store import Store

DEV = "T0001"
EPOCH = 0xDEADBEEF
FULL_PAN = "6228480402564890018"  # passes the Luhn check


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_database(db_url) as s:
        yield s


def ingest(store: Store, payload: bytes, dev: str = DEV, **kw: Any) -> IngestResult:
    with store.transaction() as tx:
        return ingest_batch(tx, dev, payload, 1_780_000_000.0, collector="test", **kw)


def q(store: Store, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with store.transaction() as tx:
        return tx.execute(sql, params)


def receipts(first: int, last: int, **extra: Any) -> list[bytes]:
    return [
        record_bytes(s, "r", receipt_body(s, **extra), t=1_780_000_000 + s, up=s * 1000)
        for s in range(first, last + 1)
    ]


def batch(recs: list[bytes], **kw: Any) -> bytes:
    return batch_bytes(DEV, EPOCH, recs, **kw)


def test_new_records_are_stored_once_and_acked(store: Store) -> None:
    recs = [
        *receipts(1, 3),
        record_bytes(4, "d", {"ev": "link_up", "down_ms": 1200, "tries": 3}, t=5, up=4000),
    ]
    result = ingest(store, batch(recs))
    assert result.acks == [Ack(DEV, EPOCH, 4)]
    assert (result.stored, result.duplicates, result.quarantined) == (4, 0, [])
    assert q(store, "SELECT seq, kind FROM records ORDER BY seq") == [
        (1, "r"),
        (2, "r"),
        (3, "r"),
        (4, "d"),
    ]
    stored_raw = q(store, "SELECT raw FROM records WHERE seq = 2")[0][0]
    assert bytes(stored_raw) == recs[1]
    assert q(store, "SELECT trc, amt, ch, cur, st, seq FROM receipts ORDER BY seq")[0] == (
        "000001",
        101,
        "card",
        "CNY",
        "approved",
        1,
    )
    assert q(store, "SELECT COUNT(*) FROM records WHERE kind = 'r'") == [(3,)]
    assert q(store, "SELECT ev, seq FROM diag_events") == [("link_up", 4)]
    assert q(store, "SELECT mid, tid FROM devices WHERE dev = ?", DEV) == [
        ("898310048161234", "10000001")
    ]
    assert q(store, "SELECT seq_from, seq_to, n_records, n_new FROM uploads") == [(1, 4, 4, 4)]


def test_identical_resend_is_stored_once_and_acked_again(store: Store) -> None:
    payload = batch(receipts(1, 5))
    ingest(store, payload)
    again = ingest(store, payload)
    assert again.acks == [Ack(DEV, EPOCH, 5)]
    assert (again.stored, again.duplicates) == (0, 5)
    overlap = ingest(store, batch(receipts(3, 8)))
    assert (overlap.stored, overlap.duplicates) == (3, 3)
    assert overlap.acks == [Ack(DEV, EPOCH, 8)]
    assert q(store, "SELECT COUNT(*), COUNT(DISTINCT seq) FROM records") == [(8, 8)]
    assert q(store, "SELECT COUNT(*) FROM records WHERE kind = 'r'") == [(8,)]


def test_same_seq_with_other_content_is_a_conflict(store: Store) -> None:
    ingest(store, batch(receipts(1, 3)))
    other = record_bytes(2, "r", receipt_body(999), t=7)
    result = ingest(store, batch([other, *receipts(4, 4)]))
    assert result.quarantined == ["conflict"]
    assert result.acks == [Ack(DEV, EPOCH, 4)]
    assert q(store, "SELECT reason, seq, raw FROM quarantine") == [("conflict", 2, other)]
    assert q(store, "SELECT trc FROM receipts WHERE seq = 2") == [("000002",)]


def test_out_of_order_batches_ack_only_the_contiguous_seq(store: Store) -> None:
    assert ingest(store, batch(receipts(11, 20))).acks == [Ack(DEV, EPOCH, 0)]
    assert ingest(store, batch(receipts(21, 25))).acks == [Ack(DEV, EPOCH, 0)]
    assert ingest(store, batch(receipts(2, 10))).acks == [Ack(DEV, EPOCH, 0)]
    assert ingest(store, batch(receipts(1, 1))).acks == [Ack(DEV, EPOCH, 25)]
    assert q(store, "SELECT upto, max_seen FROM ack_state") == [(25, 25)]


def test_declared_gaps_and_bad_records_count_as_accounted(store: Store) -> None:
    bad = record_bytes(3, "r", {"mid": "short"}, t=9)
    result = ingest(store, batch([*receipts(1, 2), bad, *receipts(9, 10)], gaps=[[4, 8]]))
    assert result.quarantined == ["record_schema"]
    assert result.acks == [Ack(DEV, EPOCH, 10)]
    assert q(store, "SELECT reason, seq FROM quarantine") == [("record_schema", 3)]
    assert q(store, "SELECT seq_from, seq_to FROM declared_gaps") == [(4, 8)]
    # The bad record resent identically is neither stored nor quarantined twice.
    again = ingest(store, batch([bad]))
    assert (again.quarantined, again.duplicates) == ([], 1)
    assert q(store, "SELECT COUNT(*) FROM quarantine") == [(1,)]


def test_gap_declared_late_joins_older_seqs(store: Store) -> None:
    ingest(store, batch(receipts(1, 2)))
    ingest(store, batch(receipts(6, 7)))
    assert ingest(store, batch([], gaps=[[3, 5]])).acks == [Ack(DEV, EPOCH, 7)]


def test_hmac_is_checked_before_decoding_and_forgeries_never_move_the_ack(store: Store) -> None:
    key = bytes(range(32))
    with store.transaction() as tx:
        tx.execute("INSERT INTO devices (dev, hmac_key) VALUES (?, ?)", (DEV, key))
    assert ingest(store, batch(receipts(1, 3), key=key)).acks == [Ack(DEV, EPOCH, 3)]
    unsigned = ingest(store, batch(receipts(4, 6)))
    forged = ingest(store, batch(receipts(4, 6), key=b"x" * 32))
    garbage = ingest(store, b"\xff" * 40 + b"\x00" * 32)  # undecodable, MAC fails first
    for result in (unsigned, forged, garbage):
        assert result.acks == []
        assert result.quarantined == ["mac"]
    assert q(store, "SELECT upto FROM ack_state") == [(3,)]
    assert q(store, "SELECT MAX(seq) FROM records") == [(3,)]


def test_batch_on_another_devices_topic_is_refused(store: Store) -> None:
    result = ingest(store, batch(receipts(1, 3)), dev="T0002")
    assert result.acks == []
    assert result.quarantined == ["dev_mismatch"]
    assert q(store, "SELECT COUNT(*) FROM records") == [(0,)]
    assert q(store, "SELECT COUNT(*) FROM ack_state") == [(0,)]
    assert q(store, "SELECT dev, topic FROM quarantine") == [("T0002", "dz/v1/T0002/up")]


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xa1", "cbor"),
        (b"not cbor at all", "cbor"),
        (cbor2.dumps([1, 2, 3]), "cbor"),
        (b"\x00" * 9000, "too_large"),
        (cbor2.dumps({"v": 2, "dev": DEV, "epoch": 1, "boot": 1, "recs": []}), "version"),
        (cbor2.dumps({"v": 1, "dev": DEV, "epoch": -1, "boot": 1, "recs": []}), "schema"),
        (cbor2.dumps({"v": 1, "dev": DEV, "epoch": 1, "boot": 1}), "schema"),
        (cbor2.dumps({"v": 1, "dev": DEV, "epoch": 1, "boot": 1, "recs": [_deep(20)]}), "cbor"),
        (
            cbor2.dumps({"v": 1, "dev": DEV, "epoch": 1, "boot": 1, "recs": []}) + b"\x00",
            "cbor",
        ),
        (
            # indefinite-length map: not in the contract's subset
            b"\xbf" + cbor2.dumps("v")[0:] + b"\x01\xff",
            "cbor",
        ),
    ],
)
def test_malformed_batches_are_quarantined_with_their_reason(
    store: Store, payload: bytes, reason: str
) -> None:
    result = ingest(store, payload)
    assert result.acks == []
    assert result.quarantined == [reason]
    ((got_reason, detail, raw),) = q(store, "SELECT reason, detail, raw FROM quarantine")
    assert got_reason == reason and detail
    assert bytes(raw) == payload


def test_cbor_tags_in_a_record_are_refused(store: Store) -> None:
    tagged = cbor2.dumps(
        {"seq": 1, "k": "d", "t": 0, "boot": 1, "up": 0, "b": {"ev": "x", "w": cbor2.CBORTag(1, 5)}}
    )
    result = ingest(store, batch([tagged]))
    assert result.quarantined == ["cbor"]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (record_bytes(1, "x", {}), "record_schema"),
        (record_bytes(1, "r", receipt_body(1, amt=-5)), "record_schema"),
        (record_bytes(1, "r", receipt_body(1, amt=True)), "record_schema"),
        # Full-width and Arabic-Indic digits are digits to Python's `\d`, not to an acquirer.
        (
            record_bytes(1, "r", receipt_body(1, trc="\uff11\uff12\uff13\uff14\uff15\uff16")),
            "record_schema",
        ),
        (
            record_bytes(1, "r", receipt_body(1, bat="\u0661\u0662\u0663\u0664\u0665\u0666")),
            "record_schema",
        ),
        (record_bytes(1, "r", receipt_body(1, typ="steal")), "record_schema"),
        (record_bytes(1, "r", receipt_body(1, sd="1340")), "record_schema"),
        (record_bytes(1, "r", receipt_body(1, pan=FULL_PAN)), "pan_unmasked"),
        (record_bytes(1, "r", receipt_body(1, memo=f"card {FULL_PAN}")), "pan_unmasked"),
        (record_bytes(1, "d", {"ev": "lost", "from": 5, "to": 2}), "record_schema"),
        (record_bytes(1, "d", {"ev": "signal", "reg": 9}), "record_schema"),
        (record_bytes(1, "d", {"ev": "link_down", "stage": "moon"}), "record_schema"),
        (record_bytes(1, "d", {"ev": "link_down", "stage": [1]}), "record_schema"),
        (record_bytes(1, "r", receipt_body(1, typ={"x": 1})), "record_schema"),
        (record_bytes(1, "r", receipt_body(1, memo="x" * 20 + FULL_PAN)), "pan_unmasked"),
        (record_bytes(1, "d", {"ev": "probe", "pad": "x" * 600}), "record_too_large"),
    ],
)
def test_bad_records_are_quarantined_and_good_ones_still_stored(
    store: Store, record: bytes, reason: str
) -> None:
    result = ingest(store, batch([record, *receipts(2, 3)]))
    assert result.quarantined == [reason]
    assert result.acks == [Ack(DEV, EPOCH, 3)]
    assert q(store, "SELECT seq FROM records ORDER BY seq") == [(2,), (3,)]


def test_a_full_pan_is_never_stored(store: Store) -> None:
    leaky = record_bytes(1, "r", receipt_body(1, pan=FULL_PAN))
    assert ingest(store, batch([leaky])).quarantined == ["pan_unmasked"]
    ((raw, detail),) = q(store, "SELECT raw, detail FROM quarantine")
    assert FULL_PAN.encode() not in bytes(raw)
    assert b"622848*********0018" in bytes(raw)
    assert b"898310048161234" in bytes(raw)  # the merchant id is not a card number
    assert FULL_PAN not in detail
    # A resend with the same full PAN is recognised as the same refused record.
    assert ingest(store, batch([leaky])).duplicates == 1
    assert q(store, "SELECT COUNT(*) FROM quarantine") == [(1,)]


def test_a_qr_sale_keeps_its_order_number_and_channel_id(store: Store) -> None:
    """DESIGN §2.3: `ord` and `xid` are stored as receipt columns. A 28-digit WeChat id is no
    card number even when a 19-digit piece of it passes Luhn; a card number standing alone in
    an id is refused like one anywhere else."""
    wechat = "4200000001202501078000000001"
    assert luhn_ok(wechat[:19])
    qr = record_bytes(1, "r", receipt_body(1, ch="qr", ord="DZ20250107000001", xid=wechat))
    # Passes Luhn, led by a date as merchants' order numbers are, as no card number is: kept.
    dated = "WX20250107130000001"
    assert luhn_ok(dated[2:])
    qr2 = record_bytes(4, "r", receipt_body(4, ch="qr", ord=dated))
    leaky = record_bytes(2, "r", receipt_body(2, ord=f"ORD{FULL_PAN}"))
    bad = record_bytes(3, "r", receipt_body(3, xid="with space"))
    result = ingest(store, batch([qr, leaky, bad, qr2]))
    assert result.quarantined == ["pan_unmasked", "record_schema"]
    assert q(store, "SELECT ord, xid FROM receipts ORDER BY seq") == [
        ("DZ20250107000001", wechat), (dated, None)]  # fmt: skip
    ((raw,),) = q(store, "SELECT raw FROM quarantine WHERE reason = 'pan_unmasked'")
    assert FULL_PAN.encode() not in bytes(raw)


def test_latest_state_of_a_transaction_wins(store: Store) -> None:
    key = {"trc": "000077"}
    first = record_bytes(1, "r", {**receipt_body(77), **key, "st": "no_response"}, t=10)
    later = record_bytes(2, "r", {**receipt_body(77), **key, "st": "reversed", "rv": "98"}, t=20)
    ingest(store, batch([later]))  # the later state arrives first
    ingest(store, batch([first]))
    assert q(store, "SELECT st, seq FROM receipts") == [("reversed", 2)]
    # Every state stays in `records`, as the device sent it.
    history = q(store, "SELECT raw FROM records ORDER BY seq")
    assert [cbor2.loads(bytes(raw))["b"]["st"] for (raw,) in history] == ["no_response", "reversed"]


def test_records_without_a_clock_are_placed_from_uptime(store: Store) -> None:
    early = [record_bytes(s, "r", receipt_body(s), t=0, boot=3, up=s * 10_000) for s in (1, 2)]
    ingest(store, batch(early, boot=3))
    assert q(store, "SELECT placed_t FROM records ORDER BY seq") == [(None,), (None,)]
    clock = record_bytes(
        3, "d", {"ev": "clock", "step_s": 100, "src": "ack"}, t=5000, boot=3, up=30_000
    )
    ingest(store, batch([clock], boot=3))
    assert q(store, "SELECT placed_t FROM records ORDER BY seq") == [(4980,), (4990,), (5000,)]
    assert q(store, "SELECT placed_t FROM receipts ORDER BY seq") == [(4980,), (4990,)]
    late = record_bytes(4, "r", receipt_body(4), t=0, boot=3, up=40_000)
    ingest(store, batch([late], boot=3))
    assert q(store, "SELECT placed_t FROM records WHERE seq = 4") == [(5010,)]
    assert q(store, "SELECT unplaced FROM ack_state") == [(0,)]


def test_unknown_devices_are_refused_when_keys_are_required(store: Store) -> None:
    result = ingest(store, batch(receipts(1, 1)), require_key=True)
    assert (result.acks, result.quarantined) == ([], ["unknown_device"])


def test_a_heartbeat_does_not_let_a_keyless_device_past_the_key_requirement(
    store: Store,
) -> None:
    """A heartbeat or status message puts the device in `devices` (no key): still refused."""
    with store.transaction() as tx:
        ingest_heartbeat(tx, DEV, heartbeat_bytes(DEV, t=1_780_000_000), 1_780_000_000.0)
    assert q(store, "SELECT dev, hmac_key FROM devices") == [(DEV, None)]
    result = ingest(store, batch(receipts(1, 1)), require_key=True)
    assert (result.acks, result.quarantined) == ([], ["unknown_device"])
    assert q(store, "SELECT COUNT(*) FROM records") == [(0,)]


def test_same_refused_bytes_are_one_quarantine_row(store: Store) -> None:
    ingest(store, b"junk")
    second = ingest(store, b"junk")
    assert (second.quarantined, second.duplicates) == ([], 1)
    assert q(store, "SELECT repeats FROM quarantine") == [(2,)]


def test_epochs_are_accounted_separately(store: Store) -> None:
    ingest(store, batch(receipts(1, 3)))
    other = batch_bytes(DEV, 7, receipts(1, 2, mid="898310048160000"))
    assert ingest(store, other).acks == [Ack(DEV, 7, 2)]
    assert q(store, "SELECT epoch, upto FROM ack_state ORDER BY epoch") == [(7, 2), (EPOCH, 3)]


def test_a_batch_prepared_under_another_key_is_checked_again(store: Store) -> None:
    """The collector checks uploads before its transaction; the key store decides inside it."""
    unsigned = batch(receipts(1, 3))
    prepared = verify(Upload(DEV, unsigned), read_device(store.query, DEV), require_key=False)
    assert prepared.all_accepted is not None  # it passed, for a device without a key ...
    with store.transaction() as tx:  # ... which then gets one, before the commit
        tx.execute("INSERT INTO devices (dev, hmac_key) VALUES (?, ?)", (DEV, b"k" * 32))
    result = ingest(store, unsigned, verdict=prepared)
    assert result.quarantined == ["mac"] and result.acks == []
    assert q(store, "SELECT COUNT(*) FROM records") == [(0,)]
    signed = batch(receipts(1, 3), key=b"k" * 32)
    still_valid = verify(Upload(DEV, signed), read_device(store.query, DEV), require_key=False)
    assert ingest(store, signed, verdict=still_valid).acks == [Ack(DEV, EPOCH, 3)]


def test_a_schema_1_store_upgrades_without_losing_records(db_url: str) -> None:
    """Core migration 2 drops receipt_history and records.body_json; records and acks stay."""
    from daozhang.collector.tables import MIGRATIONS
    from daozhang.store import open_store
    from daozhang.store.migrate import migrate

    payload = batch(receipts(1, 4))
    schema_1 = [("core", MIGRATIONS[:1])]
    with (
        open_store(db_url, schema_1) as old,
        old.transaction() as tx,
    ):  # what a schema-1 collector wrote
        tx.execute(
            "INSERT INTO records (dev, epoch, seq, kind, t, boot, up, body_json, raw,"
            " received_at) VALUES (?, ?, 1, 'r', 5, 1, 0, '{}', ?, 1.0)",
            (DEV, EPOCH, receipts(1, 1)[0]),
        )
        tx.execute(
            "INSERT INTO ack_state (dev, epoch, upto, max_seen, first_at, updated_at)"
            " VALUES (?, ?, 1, 1, 1.0, 1.0)",
            (DEV, EPOCH),
        )
    with open_store(db_url) as store:
        applied = migrate(store, [("core", MIGRATIONS)])
        assert applied[:2] == ["core/0002_lean_records", "core/0003_heartbeat_indexes"]
        assert applied == [f"core/{m.version:04d}_{m.name}" for m in MIGRATIONS[1:]]
        assert q(store, "SELECT seq FROM records") == [(1,)]
        assert ingest(store, payload).acks == [Ack(DEV, EPOCH, 4)]
        assert q(store, "SELECT COUNT(*) FROM records") == [(4,)]
