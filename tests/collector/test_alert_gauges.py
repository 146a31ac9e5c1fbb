"""The alert rules' gauges on /metrics: fleet-level, a fixed set of series however many
devices, cells or merchants there are."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from daozhang.collector.alert_gauges import fleet_alert_gauges, money_gauges
from daozhang.collector.metrics import Metrics, serve
from daozhang.collector.timeline import ingest_heartbeat, ingest_status
from daozhang.correlate.engine import analyse, record
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.ports import free_port
from daozhang.schema import open_database
from daozhang.store import Store

from tests.correlate.builder import M1, M2, M3, Shop, bj

NOW = 1_796_623_200.0


def _beat(store: Store, dev: str, ago_s: float, **fields: object) -> None:
    with store.transaction() as tx:
        ingest_status(tx, dev, b"online", NOW - ago_s - 1)
        ingest_heartbeat(tx, dev, heartbeat_bytes(dev, t=int(NOW - ago_s), **fields), NOW - ago_s)


def _values(store: Store) -> dict[str, float]:
    return {
        g.name + labels: value
        for g in fleet_alert_gauges(store, NOW)
        for labels, value in g.samples
    }


def test_fleet_gauges_in_fixed_steps(db_url: str) -> None:
    with open_database(db_url) as store:
        lte = {"rat": "lte", "rsrp": -90, "cell": 7}
        _beat(
            store, "GONE", 2 * 3600, jrec=4, jold_s=600, next_seq=5, jbytes=2000, jcap=2400, sig=lte
        )
        _beat(store, "SPOT", 20 * 60, jrec=0, next_seq=5, sig=lte)
        _beat(store, "WEAK", 60, jrec=0, next_seq=5, sig={"rat": "lte", "rsrp": -121})
        _beat(store, "CSQ", 60, jrec=0, next_seq=5, sig={"rat": "gsm", "csq": 5})
        v = _values(store)
    assert v['dz_devices_silent{over="15m"}'] == 2 and v['dz_devices_silent{over="1h"}'] == 1
    assert v['dz_devices_silent_unsent{over="1h"}'] == 1
    assert v['dz_devices_silent_unsent{over="4h"}'] == 0
    # 10 minutes old at a heartbeat two hours ago (by its clock): 2 h 10 min now.
    assert v["dz_unsent_oldest_seconds"] == 2 * 3600 + 600
    assert v['dz_devices_unsent_older{over="1h"}'] == 1
    assert v['dz_devices_unsent_older{over="4h"}'] == 0
    assert v["dz_journal_unsent_bytes_max"] == 2000
    assert v['dz_devices_journal_full{over="0.8"}'] == 1  # 2000 of 2400
    assert v['dz_devices_journal_full{over="0.9"}'] == 0
    assert v["dz_devices_signal_poor"] == 2  # RSRP -121; CSQ 5 is -103 dBm
    assert v['dz_cell_devices_silent_max{over="15m"}'] == 2
    assert v['dz_cell_devices_silent_max{over="1h"}'] == 1


def test_the_series_do_not_grow_with_the_fleet(sqlite_url: str) -> None:
    with open_database(sqlite_url) as store:
        _beat(store, "ONE", 60, sig={"rat": "lte", "rsrp": -90, "cell": 1})
        few = len(_values(store))
        for n in range(50):
            _beat(store, f"D{n:03d}", 7200, jrec=1, next_seq=2, jold_s=5, sig={"cell": n})
        assert len(_values(store)) == few


def test_money_gauges_from_the_latest_correlate_run(tmp_path: Path) -> None:
    shop = Shop(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path)
    try:
        _money(shop)
    finally:
        shop.close()


def _money(shop: Shop) -> None:
    for n, mid in enumerate((M1, M2, M3)):
        shop.sale("2025-01-07 15:00", mid=mid, tid=f"{n + 1}0000001", dev=f"DEV0000{n + 1}")
    shop.detail_file("2025-01-08")
    shop.run("2025-01-09 12:00")
    as_of = bj("2025-01-09 12:00")
    record(shop.store, as_of, analyse(shop.store, as_of=as_of).findings)
    values = {
        g.name + labels: value
        for g in money_gauges(shop.store, as_of + 60)
        for labels, value in g.samples
    }
    assert values['dz_unpaid_yuan{cause="acquirer_side"}'] == 300.0
    assert values['dz_unpaid_yuan{cause="unknown"}'] == 0
    assert values["dz_acquirer_day_unpaid_merchants_max"] == 3
    assert values["dz_correlate_age_seconds"] == 60


def exported_names(text: str) -> set[str]:
    """Every series name a Prometheus text exposition declares (histograms' parts too)."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def scrape_names(db_url: str, pki_dir: Path | None = None) -> set[str]:
    open_database(db_url).close()
    port = free_port()
    server = serve(Metrics(), port, db_url, pki_dir=pki_dir)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            return exported_names(r.read().decode())
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_serves_the_alert_gauges(sqlite_url: str) -> None:
    names = scrape_names(sqlite_url)
    for name in (
        "dz_devices_silent_unsent",
        "dz_unsent_oldest_seconds",
        "dz_cell_devices_silent_max",
        "dz_unpaid_yuan",
        "dz_acquirer_day_unpaid_merchants_max",
        "dz_collector_quarantined_total",
    ):
        assert name in names, name
