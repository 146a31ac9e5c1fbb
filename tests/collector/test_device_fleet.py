"""`daozhang device` (the key store) and `daozhang fleet status`, on both engines."""

from __future__ import annotations

import json

import pytest
from daozhang.cli import main
from daozhang.collector.ingest import Ack, ingest_batch
from daozhang.collector.metrics import fleet_gauges
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.fleet.status import fleet_status
from daozhang.lab.devicewire import batch_bytes, heartbeat_bytes, receipt_body, record_bytes
from daozhang.schema import open_database

NOW = 1_780_000_000.0


def test_device_add_generates_a_key_the_collector_then_requires(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["device", "add", "POS-0001", "--db", db_url, "--generate", "--note", "shop 7"]) == 0
    )
    key = bytes.fromhex(capsys.readouterr().out.strip())
    assert len(key) == 32
    recs = [record_bytes(1, "r", receipt_body(1), t=5)]
    with open_database(db_url) as store, store.transaction() as tx:
        signed = ingest_batch(tx, "POS-0001", batch_bytes("POS-0001", 1, recs, key=key), NOW)
        unsigned = ingest_batch(tx, "POS-0001", batch_bytes("POS-0001", 1, recs), NOW)
    assert signed.acks == [Ack("POS-0001", 1, 1)]
    assert unsigned.quarantined == ["mac"]
    # The same key again is fine; another key needs --replace.
    assert main(["device", "add", "POS-0001", "--db", db_url, "--key", key.hex()]) == 0
    assert main(["device", "add", "POS-0001", "--db", db_url, "--key", "ab" * 32]) == 2
    assert "already has a different key" in capsys.readouterr().err
    assert main(["device", "add", "POS-0001", "--db", db_url, "--key", "ab" * 32, "--replace"]) == 0
    assert main(["device", "list", "--db", db_url, "--json"]) == 0
    out = capsys.readouterr().out
    (listed,) = json.loads(out)
    assert listed["dev"] == "POS-0001" and listed["has_key"] and listed["note"] == "shop 7"
    assert key.hex() not in out and "ab" * 32 not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["device", "add", "no spaces", "--key", "00" * 32], "is not [A-Za-z0-9_-]"),
        (["device", "add", "POS-0002", "--key", "zz"], "not hexadecimal"),
        (["device", "add", "POS-0002", "--key", "00" * 4], "has 4 bytes"),
    ],
)
def test_device_add_refuses_bad_input_clearly(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--db", sqlite_url]) == 2
    assert message in capsys.readouterr().err


def test_fleet_status_sorts_worst_first(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_database(db_url) as store, store.transaction() as tx:
        # OKAY: heard a minute ago, nothing pending.
        ingest_status(tx, "OKAY", b"online", NOW - 3600)
        ingest_heartbeat(tx, "OKAY", heartbeat_bytes("OKAY", jrec=0, sync_ok=5), NOW - 60)
        # GONE: silent for an hour with 50 records it never sent.
        ingest_status(tx, "GONE", b"online", NOW - 7200)
        hb = heartbeat_bytes("GONE", jrec=50, jold_s=300, recon=4, sig={"rat": "lte", "rsrp": -118})
        ingest_heartbeat(tx, "GONE", hb, NOW - 3600)
        # DOWN: its LWT said offline, nothing pending.
        ingest_heartbeat(tx, "DOWN", heartbeat_bytes("DOWN", jrec=0), NOW - 120)
        ingest_status(tx, "DOWN", b"offline", NOW - 100)
        # SLOW: online, but its oldest unsent record is 20 minutes old.
        ingest_status(tx, "SLOW", b"online", NOW - 500)
        ingest_heartbeat(tx, "SLOW", heartbeat_bytes("SLOW", jrec=10, jold_s=1200), NOW - 30)
        ingest_batch(tx, "SLOW", batch_bytes("SLOW", 3, [record_bytes(1, "d", {"ev": "x"})]), NOW)
    with open_database(db_url) as store:
        rows = fleet_status(store, NOW)
    assert [(r.dev, r.level) for r in rows] == [("GONE", 3), ("DOWN", 2), ("SLOW", 1), ("OKAY", 0)]
    assert rows[0].problem == "silent with 50 unsent records"
    assert rows[0].signal == {"rat": "lte", "rsrp": -118} and rows[0].reconnects == 4
    assert rows[2].upto == 1
    assert main(["fleet", "status", "--db", db_url, "--json", "--now", str(NOW)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["dev"] for d in data["devices"]] == ["GONE", "DOWN", "SLOW", "OKAY"]
    assert main(["fleet", "status", "--db", db_url, "--now", str(NOW)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].startswith("GONE") and "lte rsrp=-118" in table[1]


def test_backlog_is_what_the_latest_heartbeat_held_less_what_has_been_stored_since(
    db_url: str,
) -> None:
    """A heartbeat is up to an interval old: the 10 records it reported unacked (seqs 1-10 of
    epoch 5) stop being backlog as they arrive, before the next heartbeat says so."""
    hb = heartbeat_bytes("LAGS", epoch=5, jrec=10, jold_s=90, next_seq=11)
    recs = [record_bytes(s, "r", receipt_body(s), t=1_780_000_000) for s in range(1, 11)]
    with open_database(db_url) as store:
        with store.transaction() as tx:
            ingest_status(tx, "LAGS", b"online", NOW - 200)
            ingest_heartbeat(tx, "LAGS", hb, NOW - 100)
        (row,) = fleet_status(store, NOW)
        assert (row.backlog, row.reported_backlog, row.oldest_s) == (10, 10, 90)
        with store.transaction() as tx:
            ingest_batch(tx, "LAGS", batch_bytes("LAGS", 5, recs[:4]), NOW - 50)
        (row,) = fleet_status(store, NOW)
        assert (row.backlog, row.reported_backlog) == (6, 10)
        assert fleet_gauges(store)[2] == 6
        with store.transaction() as tx:
            ingest_batch(tx, "LAGS", batch_bytes("LAGS", 5, recs[4:]), NOW - 40)
        (row,) = fleet_status(store, NOW)
    assert (row.backlog, row.oldest_s, row.problem) == (0, None, "ok")


def test_fleet_status_shows_the_latest_heartbeat_by_the_terminal_clock(db_url: str) -> None:
    """A heartbeat delivered late (sent at 10:00, arriving after the 10:05 one) does not replace
    what the terminal said last (DESIGN §2.3, event time)."""
    t0 = int(NOW) - 600
    with open_database(db_url) as store:
        with store.transaction() as tx:
            ingest_heartbeat(tx, "LATE", heartbeat_bytes("LATE", t=t0 + 300, jrec=0), NOW - 290)
            ingest_heartbeat(tx, "LATE", heartbeat_bytes("LATE", t=t0, jrec=40), NOW - 10)
        (row,) = fleet_status(store, NOW)
    assert (row.reported_backlog, row.reported_at) == (0, t0 + 300)
