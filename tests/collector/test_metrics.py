"""The Prometheus text the collector serves."""

from __future__ import annotations

import socket
import sqlite3
import struct
import time
import urllib.request

import pytest
from daozhang.collector.metrics import Metrics, fleet_gauges, serve
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.ports import free_port
from daozhang.schema import open_database


def test_counters_histogram_and_fleet_gauges(sqlite_url: str) -> None:
    m = Metrics()
    m.count_message("up", 50, 2, ["mac", "mac", "conflict"])
    m.count_message("hb", 0, 0, [])
    m.count_message("up", 0, 0, [], accepted=20)  # acked from the inbox: one more message
    m.count_message("up", 20, 0, [], projected=True)  # stored from there: no new message
    m.observe_commit(0.004, 3)
    m.observe_commit(0.3, 1)
    with open_database(sqlite_url) as store:
        with store.transaction() as tx:
            ingest_status(tx, "DEV1", b"online", 1.0)
            ingest_heartbeat(tx, "DEV1", heartbeat_bytes("DEV1", jrec=7), 2.0)
            ingest_heartbeat(tx, "DEV1", heartbeat_bytes("DEV1", jrec=9), 3.0)
            ingest_heartbeat(tx, "DEV2", heartbeat_bytes("DEV2", jrec=1), 3.0)
            tx.execute(
                "INSERT INTO inbox (dev, epoch, seq_from, seq_to, body, received_at, collector)"
                " VALUES ('DEV3', 1, 5, 16, x'00', 4.0, 'c')"
            )
        text = m.render(lambda: fleet_gauges(store))
    lines = set(text.splitlines())
    for expected in [
        'dz_collector_messages_total{channel="up"} 2',
        "dz_collector_records_total 70",
        "dz_collector_inbox_accepted_total 20",
        "dz_collector_duplicates_total 2",
        'dz_collector_quarantined_total{reason="mac"} 2',
        'dz_collector_quarantined_total{reason="conflict"} 1',
        'dz_collector_commit_seconds_bucket{le="0.005"} 1',
        'dz_collector_commit_seconds_bucket{le="0.5"} 2',
        'dz_collector_commit_seconds_bucket{le="+Inf"} 2',
        "dz_collector_commit_seconds_count 2",
        "dz_collector_acks_total 4",
        "dz_devices 2",
        "dz_devices_online 1",
        "dz_devices_backlog_records 10",
        "dz_inbox_records 12",
    ]:
        assert expected in lines, expected


def _scrape(port: int, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        return str(r.read().decode())


def test_a_scrape_takes_no_write_lock(sqlite_url: str) -> None:
    """Issue 29: the committer holds SQLite's write lock for each commit; a scrape that wanted
    it too would wait behind it (and hold it up in turn)."""
    open_database(sqlite_url).close()
    port = free_port()
    server = serve(Metrics(), port, sqlite_url)
    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a commit in progress
        assert "dz_inbox_records 0" in _scrape(port, timeout=5)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        server.shutdown()


def test_silent_and_abandoned_scrapers_cost_no_thread_and_no_traceback(
    sqlite_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    open_database(sqlite_url).close()
    port = free_port()
    server = serve(Metrics(), port, sqlite_url, timeout_s=0.5)
    try:
        silent = socket.create_connection(("127.0.0.1", port))
        silent.settimeout(5)
        started = time.monotonic()
        assert silent.recv(1024) == b""  # the server hung up on it
        assert time.monotonic() - started < 4
        silent.close()
        for _ in range(20):  # ask, then reset the connection before the answer
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            s.close()
        assert "dz_collector_records_total" in _scrape(port)
        time.sleep(0.5)
    finally:
        server.shutdown()
    assert "Traceback" not in capfd.readouterr().err
