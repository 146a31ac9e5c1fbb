"""`daozhang prune`: old heartbeats, status events and uploads go; evidence and readers' needs stay.

On both engines, against the real ingest path. The expected survivors are computed from the
rows themselves (received in the kept window, or their device's last stored row), never
written out by hand.
"""

from __future__ import annotations

import json
import random
import threading

import pytest
from daozhang.cli import main
from daozhang.collector.ingest import ingest_batch
from daozhang.collector.metrics import fleet_gauges
from daozhang.collector.retention import DAY_S, NEVER_PRUNED, prune
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.errors import UsageError
from daozhang.fleet.status import fleet_status
from daozhang.lab.devicewire import batch_bytes, heartbeat_bytes, receipt_body, record_bytes
from daozhang.schema import open_database
from daozhang.store import Store

NOW = 1_780_000_000.0
TIMELINES = ("heartbeats", "status_events", "uploads")


def _fill(store: Store, seed: int = 7) -> None:
    """40 days of traffic from four devices; STALE went silent 35 days ago."""
    rng = random.Random(seed)
    seq = {dev: 0 for dev in ("DEV1", "DEV2", "DEV3", "STALE")}
    terminal = {dev: f"{10_000_001 + n}" for n, dev in enumerate(seq)}  # one each
    with store.transaction() as tx:
        for step in range(400):
            for dev in list(seq):
                age_days = 40 - step / 10 + rng.uniform(-0.5, 0.5)  # not in id order near the cut
                if dev == "STALE" and age_days < 35:
                    continue
                at = NOW - age_days * DAY_S
                hb = heartbeat_bytes(dev, epoch=1, jrec=step % 7, next_seq=seq[dev] + 1, recon=1)
                ingest_heartbeat(tx, dev, hb, at)
                if step % 5 == 0:
                    ingest_status(tx, dev, b"online" if step % 10 else b"offline", at)
                if step % 3 == 0:
                    seq[dev] += 1
                    body = receipt_body(seq[dev], tid=terminal[dev])
                    rec = record_bytes(seq[dev], "r", body, t=5)
                    ingest_batch(tx, dev, batch_bytes(dev, 1, [rec]), at)
                    diag = record_bytes(seq[dev] + 1, "d", {"ev": "link_up"}, t=5)
                    seq[dev] += 1
                    ingest_batch(tx, dev, batch_bytes(dev, 1, [diag]), at)


def _rows(store: Store, table: str) -> set[tuple[int, str, float]]:
    return {
        (int(i), str(d), float(r))
        for i, d, r in store.query(f"SELECT id, dev, received_at FROM {table}")
    }


def _survivors(rows: set[tuple[int, str, float]], cut: float, keep_latest: bool) -> set[int]:
    latest: dict[str, int] = {}
    for id_, dev, _ in rows:
        latest[dev] = max(latest.get(dev, 0), id_)
    kept = {id_ for id_, _, at in rows if at >= cut}
    return kept | set(latest.values()) if keep_latest else kept


def _counts(store: Store, tables: tuple[str, ...]) -> dict[str, int]:
    return {t: int(store.query(f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}


def test_prune_keeps_the_window_and_each_devices_latest_and_nothing_else(db_url: str) -> None:
    with open_database(db_url) as store:
        _fill(store)
        cut = NOW - 30 * DAY_S
        with store.transaction() as tx:  # on both sides of the cut, and on it (kept)
            for at in (cut - 1, cut, cut + 1, NOW):
                ingest_heartbeat(tx, "EDGE", heartbeat_bytes("EDGE"), at)
                ingest_status(tx, "EDGE", b"online", at)
        before = {t: _rows(store, t) for t in TIMELINES}
        evidence = _counts(store, NEVER_PRUNED)
        assert min(evidence[t] for t in ("records", "receipts", "diag_events")) > 0
        expected = {
            "heartbeats": _survivors(before["heartbeats"], cut, keep_latest=True),
            "status_events": _survivors(before["status_events"], cut, keep_latest=True),
            "uploads": _survivors(before["uploads"], cut, keep_latest=False),
        }
        # A chunk of 7 rows puts kept rows inside chunks and chunk ends everywhere.
        dry = prune(store, keep_days=30, now=NOW, dry_run=True, chunk_rows=7)
        assert {t: _rows(store, t) for t in TIMELINES} == before
        done = prune(store, keep_days=30, now=NOW, chunk_rows=7)
        after = {t: {row[0] for row in _rows(store, t)} for t in TIMELINES}
        assert after == expected
        assert _counts(store, NEVER_PRUNED) == evidence
        again = prune(store, keep_days=30, now=NOW, chunk_rows=7)
    assert done.cut == cut
    for table, dry_t, done_t, again_t in zip(
        TIMELINES, dry.tables, done.tables, again.tables, strict=True
    ):
        assert dry_t == done_t and done_t.table == table
        assert done_t.deleted == len(before[table]) - len(expected[table]) > 0
        assert again_t.deleted == 0 and again_t.kept_latest == done_t.kept_latest
    stale_hb = [r for r in before["heartbeats"] if r[1] == "STALE"]
    assert max(r[0] for r in stale_hb) in after["heartbeats"]  # silent 35 days, still shown
    assert done.tables[0].kept_latest == 1  # STALE's; the others' latest are recent
    assert done.tables[2].kept_latest == 0


def test_what_fleet_status_and_the_scrape_show_is_the_same_after_a_prune(db_url: str) -> None:
    with open_database(db_url) as store:
        _fill(store)
        status, gauges = fleet_status(store, NOW), fleet_gauges(store)
        prune(store, keep_days=1, now=NOW, chunk_rows=50)
        assert fleet_status(store, NOW) == status
        assert fleet_gauges(store) == gauges
    stale = next(r for r in status if r.dev == "STALE")
    assert stale.reported_backlog is not None  # its heartbeat of 35 days ago is still read


def test_a_collector_writing_meanwhile_is_not_held_up_or_touched(db_url: str) -> None:
    """The prune's chunks are short transactions: a writer beside it commits throughout."""
    with open_database(db_url) as store, store.transaction() as tx:
        for n in range(3000):
            ingest_heartbeat(tx, "OLD", heartbeat_bytes("OLD", jrec=n), NOW - 60 * DAY_S + n)
    written: list[int] = []
    failures: list[BaseException] = []

    def collector() -> None:
        try:
            with open_database(db_url) as store:
                for n in range(150):
                    with store.transaction() as tx:
                        ingest_heartbeat(tx, "NEW", heartbeat_bytes("NEW", jrec=n), NOW + n)
                    written.append(n)
        except BaseException as exc:  # reported below, in the test's own thread
            failures.append(exc)

    writer = threading.Thread(target=collector)
    writer.start()
    with open_database(db_url) as store:
        result = prune(store, keep_days=30, now=NOW, chunk_rows=100)
        writer.join(timeout=120)
        assert not writer.is_alive() and not failures, failures
        assert result.tables[0].deleted == 2999 and result.tables[0].kept_latest == 1
        left = store.query("SELECT dev, COUNT(*) FROM heartbeats GROUP BY dev ORDER BY dev")
    assert [(d, int(n)) for d, n in left] == [("NEW", 150), ("OLD", 1)]
    assert written == list(range(150))


def test_prune_cli_reports_what_it_deleted(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_database(sqlite_url) as store:
        _fill(store)
        expected = {t: len(_rows(store, t)) for t in TIMELINES}
    argv = ["prune", "--db", sqlite_url, "--keep-days", "30", "--now", str(NOW)]
    assert main([*argv, "--dry-run"]) == 0
    dry_text = capsys.readouterr().out
    assert "heartbeats     would delete " in dry_text and "never pruned: records" in dry_text
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    with open_database(sqlite_url) as store:
        left = {t: len(_rows(store, t)) for t in TIMELINES}
    assert doc["dry_run"] is False and doc["cut"] == NOW - 30 * DAY_S
    assert {t["table"]: t["deleted"] for t in doc["tables"]} == {
        t: expected[t] - left[t] for t in TIMELINES
    }
    for t in doc["tables"]:  # the dry run counted exactly what then went
        assert f"{t['table']:<14} would delete {t['deleted']}" in dry_text
    assert "receipts" in doc["never_pruned"]


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("0", "must be at least 1"),
        ("0.5", "must be at least 1"),
        ("-3", "must be at least 1"),
        ("nan", "must be at least 1"),
        ("inf", "must be at least 1"),
        ("a week", "expected a number of days, got 'a week'"),
    ],
)
def test_prune_refuses_a_bad_keep_days_and_deletes_nothing(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], days: str, message: str
) -> None:
    with open_database(sqlite_url) as store, store.transaction() as tx:
        ingest_heartbeat(tx, "DEV1", heartbeat_bytes("DEV1"), NOW - 90 * DAY_S)
        ingest_heartbeat(tx, "DEV1", heartbeat_bytes("DEV1"), NOW - 80 * DAY_S)
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--db", sqlite_url, "--keep-days", days, "--now", str(NOW)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "daozhang: prune: argument --keep-days: " in err and message in err
    with open_database(sqlite_url) as store:
        assert _counts(store, ("heartbeats",)) == {"heartbeats": 2}
        with pytest.raises(UsageError, match="at least 1"):
            prune(store, keep_days=0.99, now=NOW)
        assert _counts(store, ("heartbeats",)) == {"heartbeats": 2}
