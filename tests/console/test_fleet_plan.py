"""The fleet page's snapshot reads each device's last day of heartbeats from the console's
covering index: one index range per device, no table lookup per heartbeat (without it, 37 s
for 10,000 devices x one day on SQLite: bench/console_bench.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daozhang.collector.timeline import ingest_heartbeat
from daozhang.fleet.status import fleet_status
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.schema import open_database


def test_the_day_sums_read_only_the_covering_index(tmp_path: Path) -> None:
    path = tmp_path / "plan.db"
    with open_database(f"sqlite:///{path}") as store:
        with store.transaction() as tx:
            for dev in ("DEV1", "DEV2"):
                for n in range(20):
                    hb = heartbeat_bytes(dev, jrec=n, t=1_780_000_000 + n)
                    ingest_heartbeat(tx, dev, hb, 1_780_000_000.0 + n)
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        rows = fleet_status(store, 1_780_000_100.0)
        store._conn.set_trace_callback(None)  # type: ignore[attr-defined]
    assert [r.dev for r in rows] and all(r.backlog is not None for r in rows)
    (sums,) = [s for s in statements if "SUM(recon)" in s]
    conn = sqlite3.connect(path)
    try:
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sums)]
    finally:
        conn.close()
    assert any("COVERING INDEX heartbeats_sums (dev=? AND t>?)" in line for line in plan), plan
    # Heartbeats sent before the device knew the time (t = 0), by arrival: the same index,
    # not (dev, received_at) and a table lookup per heartbeat of the day.
    assert any("COVERING INDEX heartbeats_sums (dev=? AND t=?)" in line for line in plan), plan
    assert not any("heartbeats_dev" in line for line in plan), plan
