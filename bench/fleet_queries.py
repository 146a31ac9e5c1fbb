"""The fleet readers (`fleet status`, the Prometheus scrape's gauges) as heartbeats pile up.

A device sends a heartbeat every `hb_s` (300 s by default) and the store keeps them all, so a
300-device fleet holds 86,400 more rows a day. For 300 devices with 1,000 and then 8,640
heartbeats each (3.5 and 30 days), this times `fleet_status` and `fleet_gauges` on SQLite
against one full pass over the heartbeats table in the same run (`SELECT COUNT(*), SUM(jrec)`),
the least a reader that looks at every heartbeat costs. Filling the store is not timed.

    .venv/bin/python bench/fleet_queries.py [--devices N] [--per-device N N ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from daozhang.collector.metrics import fleet_gauges
from daozhang.fleet.status import fleet_status
from daozhang.schema import open_database
from daozhang.store import Store
from ingest_costs import best_of

NOW = 1_780_000_000.0
HB_S = 300


def fill(store: Store, devices: int, per_device: int) -> None:
    body = json.dumps({"sig": {"rssi": -70}})
    devs = [f"D{d:05d}" for d in range(devices)]
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO devices (dev, first_seen, last_seen, online) VALUES (?, ?, ?, 1)",
            [(dev, NOW - per_device * HB_S, NOW) for dev in devs],
        )
    for start in range(0, per_device, 500):
        rows = [
            (dev, NOW - (per_device - i) * HB_S, 1, i, 5, 2, 1, 0, body)
            for i in range(start, min(per_device, start + 500))
            for dev in devs
        ]
        with store.transaction() as tx:
            tx.executemany(
                "INSERT INTO heartbeats (dev, received_at, epoch, next_seq, jrec, sync_ok,"
                " recon, sync_fail, body_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )


def full_pass(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute("SELECT COUNT(*), SUM(jrec) FROM heartbeats")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--per-device", type=int, nargs="+", default=[1000, 8640])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dz-fleetq-", dir="/var/tmp"))  # the real disk
    try:
        print("| heartbeats | full pass s | fleet status s (x pass) | scrape gauges s (x pass) |")
        print("|---|---|---|---|")
        for per_device in args.per_device:
            with open_database(f"sqlite:///{work}/hb-{per_device}.db") as store:
                fill(store, args.devices, per_device)
                base = best_of(3, lambda: full_pass(store))
                status = best_of(3, lambda: fleet_status(store, NOW))
                gauges = best_of(3, lambda: fleet_gauges(store))
            print(
                f"| {args.devices} x {per_device:,} | {base:.3f} | {status:.3f}"
                f" ({status / base:.2f}x) | {gauges:.3f} ({gauges / base:.2f}x) |",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
