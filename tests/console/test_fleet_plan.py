"""The fleet page's snapshot reads each device's last day of heartbeats from the console's
covering index: one index range per device, no table lookup per heartbeat (without it, 37 s
for 10,000 devices x one day on SQLite: bench/console_bench.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daozhang.collector.timeline import ingest_heartbeat
from daozhang.fleet.status import fleet_status
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.lab.postgres import TempPostgres
from daozhang.schema import open_database
from daozhang.store import Store


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


def test_the_day_sums_range_the_event_time_on_postgresql(postgres_server: TempPostgres) -> None:
    """The console's `now` is a float (time.time()); compared with it, PostgreSQL casts the
    integer `t` of every heartbeat to double precision and ranges nothing: each device's
    whole history read (66 s at 10,000 devices x 30 days, bench/console_bench.py)."""
    url = postgres_server.create_database("fleet_plan_pg")
    with open_database(url) as store:
        with store.transaction() as tx:
            for n in range(20):
                hb = heartbeat_bytes("DEV1", jrec=n, t=1_780_000_000 + n)
                ingest_heartbeat(tx, "DEV1", hb, 1_780_000_000.0 + n)
        seen: list[tuple[str, tuple[object, ...]]] = []
        query = store.query

        def recording(sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
            seen.append((sql, tuple(params)))
            return query(sql, params)

        store.query = recording  # type: ignore[method-assign]
        fleet_status(store, 1_780_000_100.25)
        store.query = query  # type: ignore[method-assign]
        ((sums, params),) = [(q, p) for q, p in seen if "SUM(recon)" in q]
        plan = _plan(store, sums, params)
    assert any("Index Cond" in line and "t >= " in line for line in plan), plan
    assert not any("(t)::double precision" in line for line in plan), plan


def _plan(store: Store, sql: str, params: tuple[object, ...]) -> list[str]:
    """The plan PostgreSQL takes at fleet size (a 20-row table is scanned whatever)."""
    with store.transaction() as tx:
        tx.execute("SET LOCAL enable_seqscan = off")
        tx.execute("SET LOCAL enable_hashjoin = off")
        return [str(row[0]) for row in tx.execute("EXPLAIN " + sql, params)]
