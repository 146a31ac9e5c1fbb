"""The Prometheus text the collector serves."""

from __future__ import annotations

from daozhang.collector.devicewire import heartbeat_bytes
from daozhang.collector.metrics import Metrics, fleet_gauges
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.store import open_store


def test_counters_histogram_and_fleet_gauges(sqlite_url: str) -> None:
    m = Metrics()
    m.count_message("up", 50, 2, ["mac", "mac", "conflict"])
    m.count_message("hb", 0, 0, [])
    m.count_message("up", 0, 0, [], accepted=20)  # acked from the inbox: one more message
    m.count_message("up", 20, 0, [], projected=True)  # stored from there: no new message
    m.observe_commit(0.004, 3)
    m.observe_commit(0.3, 1)
    with open_store(sqlite_url) as store:
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
