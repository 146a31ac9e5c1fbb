"""The fleet rules against stored heartbeats and status, on both engines: each fires on the
case it names and stays quiet on its neighbour."""

from __future__ import annotations

import datetime as dt
from typing import Any

from daozhang.alerts.alert import Verdict
from daozhang.alerts.rules import parse
from daozhang.alerts.runner import evaluate
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.schema import open_database
from daozhang.store import Store
from daozhang.units import BEIJING

# Monday 2026-12-07 14:00 Beijing time: inside the default business hours.
NOW = dt.datetime(2026, 12, 7, 14, 0, tzinfo=BEIJING).timestamp()
NIGHT = dt.datetime(2026, 12, 7, 3, 0, tzinfo=BEIJING).timestamp()


def beat(store: Store, dev: str, at: float, **fields: Any) -> None:
    with store.transaction() as tx:
        ingest_status(tx, dev, b"online", at - 1)
        ingest_heartbeat(tx, dev, heartbeat_bytes(dev, t=int(at), **fields), at)


def run(store: Store, rules: dict[str, Any], now: float = NOW) -> Verdict:
    return evaluate(store, parse({"rules": rules}), now)


def keys(verdict: Verdict) -> list[str]:
    return sorted(a.key for a in verdict.firing)


def test_silent_with_unsent_fires_in_business_hours_and_is_held_at_night(db_url: str) -> None:
    with open_database(db_url) as store:
        beat(store, "GONE", NOW - 20 * 60, jrec=12, jold_s=60, next_seq=13)
        beat(store, "QUIET", NOW - 20 * 60, jrec=0, next_seq=13)  # silent, nothing unsent
        beat(store, "BUSY", NOW - 60, jrec=5, jold_s=30, next_seq=13)  # heard, unsent
        verdict = run(store, {"silent_unsent": {"minutes": 15}})
        assert keys(verdict) == ["silent_unsent:GONE"]
        (alert,) = verdict.firing
        assert "20 分钟无消息" in alert.zh and "12 条未上传" in alert.zh
        assert "silent for 20 min with 12 unsent" in alert.en


def test_silent_outside_business_hours_is_held_not_raised(db_url: str) -> None:
    with open_database(db_url) as store:
        beat(store, "GONE", NIGHT - 20 * 60, jrec=12, jold_s=60, next_seq=13)
        verdict = run(store, {"silent_unsent": {"minutes": 15}}, NIGHT)
        assert verdict.firing == [] and verdict.held == {"silent_unsent:GONE"}


def test_oldest_unsent_counts_event_time_since_the_heartbeat(db_url: str) -> None:
    with open_database(db_url) as store:
        # 40 minutes old at a heartbeat 25 minutes ago (by its clock): 65 minutes now.
        beat(store, "OLD", NOW - 25 * 60, jrec=3, jold_s=40 * 60, next_seq=4)
        beat(store, "NEW", NOW - 25 * 60, jrec=3, jold_s=10 * 60, next_seq=4)
        verdict = run(store, {"oldest_unsent": {"minutes": 60}})
        assert keys(verdict) == ["oldest_unsent:OLD"]
        assert verdict.firing[0].facts["oldest_s"] == 65 * 60


def test_journal_full_against_the_capacity_the_heartbeat_states(db_url: str) -> None:
    with open_database(db_url) as store:
        beat(store, "SMALL", NOW - 60, jrec=10, jbytes=90_000, jcap=100_000, jold_s=1, next_seq=11)
        beat(store, "BIG", NOW - 60, jrec=10, jbytes=90_000, jcap=1_000_000, jold_s=1, next_seq=11)
        # Half of SMALL's records are stored since its heartbeat: 45% left, not 90%.
        beat(store, "DRAIN", NOW - 60, jrec=10, jbytes=90_000, jcap=100_000, jold_s=1, next_seq=11)
        with store.transaction() as tx:
            tx.execute(
                "INSERT INTO ack_state (dev, epoch, upto, max_seen, first_at, updated_at)"
                " VALUES ('DRAIN', 0, 5, 5, ?, ?)",
                (NOW, NOW),
            )
        verdict = run(store, {"journal_full": {"percent": 80, "capacity_bytes": 10_000_000}})
        assert keys(verdict) == ["journal_full:SMALL"]
        assert "90%" in verdict.firing[0].zh


def test_journal_full_at_the_share_of_the_budget(db_url: str) -> None:
    with open_database(db_url) as store:
        beat(store, "FULL", NOW - 60, jrec=100, jbytes=850_000, jold_s=1, next_seq=101)
        beat(store, "HALF", NOW - 60, jrec=100, jbytes=500_000, jold_s=1, next_seq=101)
        verdict = run(store, {"journal_full": {"percent": 80, "capacity_bytes": 1_000_000}})
        assert keys(verdict) == ["journal_full:FULL"]
        assert "85%" in verdict.firing[0].zh


def test_signal_poor_only_after_the_whole_window(db_url: str) -> None:
    with open_database(db_url) as store:
        for minutes_ago in (40, 30, 20, 10, 1):
            beat(store, "WEAK", NOW - minutes_ago * 60, sig={"rat": "lte", "rsrp": -121})
        for minutes_ago, rsrp in ((40, -121), (30, -121), (20, -95), (10, -121), (1, -121)):
            beat(store, "DIPS", NOW - minutes_ago * 60, sig={"rat": "lte", "rsrp": rsrp})
        beat(store, "WIFI", NOW - 40 * 60, sig={"rat": "wifi", "rssi": -99})
        beat(store, "WIFI", NOW - 60, sig={"rat": "wifi", "rssi": -99})
        verdict = run(store, {"signal_poor": {"minutes": 30, "rsrp_dbm": -115, "rssi_dbm": -95}})
        assert keys(verdict) == ["signal_poor:WEAK", "signal_poor:WIFI"]


def test_cell_down_counts_silent_terminals_of_one_cell(db_url: str) -> None:
    with open_database(db_url) as store:
        for n in range(4):
            beat(store, f"C1-{n}", NOW - 30 * 60, sig={"rat": "lte", "rsrp": -90, "cell": 1234})
        beat(store, "C1-ok", NOW - 60, sig={"rat": "lte", "rsrp": -90, "cell": 1234})
        for n in range(2):
            beat(store, f"C2-{n}", NOW - 30 * 60, sig={"rat": "lte", "rsrp": -90, "cell": 99})
        verdict = run(store, {"cell_down": {"terminals": 3, "minutes": 10}})
        assert keys(verdict) == ["cell_down:1234"]
        assert verdict.firing[0].facts["down"] == 4


def test_quarantine_spike_counts_refusals_in_the_window(db_url: str) -> None:
    with open_database(db_url) as store:
        with store.transaction() as tx:
            for n in range(6):
                tx.execute(
                    "INSERT INTO quarantine (dev, topic, reason, detail, raw, digest,"
                    " received_at, last_at, collector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        "D",
                        "dz/v1/D/up",
                        "mac",
                        "bad mac",
                        b"x",
                        f"d{n}",
                        NOW - n * 120,
                        NOW - n * 120,
                        "c1",
                    ),
                )
        assert keys(run(store, {"quarantine_spike": {"count": 4, "minutes": 15}})) == [
            "quarantine_spike:fleet"
        ]
        assert run(store, {"quarantine_spike": {"count": 4, "minutes": 5}}).firing == []
