"""The fleet readers stay cheap as heartbeats pile up (one every `hb_s` per device, kept).

Not timed (bench/fleet_queries.py measures it): SQLite's own plan for every statement the
Prometheus scrape, `fleet status` and correlation run must reach heartbeats through an index,
never by scanning the table. The scrape once ran a subquery per heartbeat row: 58 s for 300
devices with 1,000 heartbeats each.
"""

from __future__ import annotations

import sqlite3

from daozhang.collector.metrics import fleet_gauges
from daozhang.collector.timeline import ingest_heartbeat
from daozhang.correlate.data import load
from daozhang.fleet.status import fleet_status
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.schema import open_database


def _plans(sqlite_url: str, reader: str) -> list[tuple[str, list[str]]]:
    """(statement, its plan lines) for each statement touching heartbeats that a reader runs."""
    with open_database(sqlite_url) as store:
        with store.transaction() as tx:
            for dev in ("DEV1", "DEV2"):
                for n in range(20):
                    hb = heartbeat_bytes(dev, jrec=n, t=1_780_000_000 + n)
                    ingest_heartbeat(tx, dev, hb, 1_780_000_000.0 + n)
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        if reader == "metrics":
            fleet_gauges(store)
        elif reader == "correlate":
            latest = load(store, as_of=1_780_000_100).timelines["DEV2"].last_beat
            assert latest is not None and latest.jrec == 19
        else:
            fleet_status(store, 1_780_000_100.0)
        store._conn.set_trace_callback(None)  # type: ignore[attr-defined]
    path = sqlite_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    try:
        return [
            (sql, [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)])
            for sql in statements
            if "heartbeats" in sql
        ]
    finally:
        conn.close()


def _check(plans: list[tuple[str, list[str]]]) -> None:
    assert plans, "no statement read heartbeats"
    for sql, plan in plans:
        scans = [line for line in plan if line.startswith("SCAN heartbeats") or line == "SCAN h"]
        assert not scans, f"{sql}\nscans heartbeats: {plan}"


def test_the_metrics_scrape_reads_heartbeats_by_index(sqlite_url: str) -> None:
    _check(_plans(sqlite_url, "metrics"))


def test_fleet_status_reads_heartbeats_by_index(sqlite_url: str) -> None:
    _check(_plans(sqlite_url, "fleet"))


def test_correlation_reads_each_devices_latest_heartbeat_by_index(sqlite_url: str) -> None:
    _check(_plans(sqlite_url, "correlate"))
