"""A small fleet written through the collector's own ingest, as it would arrive over MQTT.

Times are relative to the real clock (the console serves "now"): a healthy terminal in
merchant M1 with a DNS outage an hour ago and an update from 1.4.1 to 1.4.2 ninety minutes
ago (switched, restarted, confirmed), one silent for two hours with unsent records, and
one in merchant M2 whose batches fail their MAC (a re-flashed key: quarantine rows).
"""

from __future__ import annotations

import time
from typing import Any

import cbor2
from daozhang.collector.keys import add_device
from daozhang.collector.timeline import ingest_message
from daozhang.lab.devicewire import batch_bytes, receipt_body, record_bytes
from daozhang.schema import open_database

HEALTHY, SILENT, REFUSED = "DEVA0001", "DEVB0002", "DEVC0003"
UPDATED_AGO_S = 5400  # the healthy terminal restarted into 1.4.2 this long before now
M1, M2 = "898310048160001", "898310048160002"
LTE = {"rat": "lte", "rsrp": -101, "sinr": 3, "reg": 1, "cell": "460-00-1234"}


def send(url: str, dev: str, channel: str, payload: bytes, at: float) -> None:
    with open_database(url) as store, store.transaction() as tx:
        ingest_message(tx, f"dz/v1/{dev}/{channel}", payload, at, retained=channel == "status")


def heartbeat(url: str, dev: str, at: float, jrec: int = 0, **extra: Any) -> None:
    hb: dict[str, Any] = {"v": 1, "dev": dev, "t": int(at), "epoch": 7, "fw": "1.4.2"}
    hb.update({"boot": 1, "up": 3_600_000, "jrec": jrec, "link": "up", "sig": LTE})
    hb.update(extra)
    send(url, dev, "hb", cbor2.dumps(hb), at)


def build(url: str, now: float | None = None) -> float:
    now = time.time() if now is None else now
    t0 = int(now) - 3 * 3600
    # The healthy terminal: sales, an outage at the DNS stage, heartbeats every 5 minutes.
    switch = int(now) - UPDATED_AGO_S
    down, up = int(now) - 3600, int(now) - 3000
    recs = [
        record_bytes(1, "r", receipt_body(1, mid=M1, lt=t0 + 600), t=t0 + 600, up=600_000),
        record_bytes(2, "d", {"ev": "ota", "st": "switched", "ver": "1.4.2"}, t=switch - 20),
        record_bytes(3, "d", {"ev": "boot", "cause": "soft"}, t=switch, boot=2),
        record_bytes(4, "d", {"ev": "ota", "st": "confirmed", "ver": "1.4.2"}, t=switch + 60),
        record_bytes(5, "d", {"ev": "link_down", "stage": "dns", "why": "SERVFAIL"}, t=down),
        record_bytes(6, "d", {"ev": "link_up", "down_ms": 600_000, "tries": 4}, t=up),
    ]
    send(url, HEALTHY, "up", batch_bytes(HEALTHY, 7, recs), now - 2990)
    send(url, HEALTHY, "status", b"online", now - 2990)
    for at in range(t0, int(now) - 30, 300):
        recon = 1 if now - 3600 <= at < now - 2900 else 0
        old = at < switch
        heartbeat(url, HEALTHY, at, jrec=0, recon=recon, fw="1.4.1" if old else "1.4.2",
                  boot=1 if old else 2)  # fmt: skip
    # The silent one: its last heartbeat two hours ago said 5 records were not sent yet.
    recs = [record_bytes(1, "r", receipt_body(2, mid=M1, tid="10000002", lt=t0), t=t0, up=1000)]
    send(url, SILENT, "up", batch_bytes(SILENT, 7, recs), t0 + 60)
    send(url, SILENT, "status", b"online", t0 + 60)
    heartbeat(url, SILENT, now - 7200, jrec=5, jold_s=900)
    # The refused one: provisioned with a key, its uploads signed with another.
    with open_database(url) as store:
        add_device(store, REFUSED, b"k" * 32)
    recs = [record_bytes(1, "r", receipt_body(3, mid=M2, lt=t0), t=t0, up=1000)]
    send(url, REFUSED, "up", batch_bytes(REFUSED, 7, recs, key=b"x" * 32), now - 120)
    send(url, REFUSED, "status", b"online", now - 120)
    heartbeat(url, REFUSED, now - 60, jrec=1, sig={"rat": "wifi", "rssi": -70})
    return now
