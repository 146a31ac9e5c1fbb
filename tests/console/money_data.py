"""A store for the money and cells pages, written through the product (tests/correlate's
`Shop`: the collector's ingest, the settlement importer).

Money, January 2025 (all of it long due when the console runs):
- M1 (ACQ1): a sale reversed after no response inside a TLS outage (`network_reversed`),
  a sale paid in full, and a QR sale with its order number, paid in the same payout;
- M2, M3, M4 (ACQ1): one sale each, none in the acquirer's file for 2025-01-08 while their
  terminals were fine (`acquirer_side`);
- M5 (ACQ2): two sales whose payout held back ¥40.00 (`settled_short`, `risk_hold`);
- a sale on a re-keyed device whose whole upload was refused (quarantine).

Cells, relative to the real clock (the cells page shows the last day): four terminals on
cell 460-00-5001 down together two hours ago while a fifth was not (the carrier's cell), one
terminal on 460-00-7777 down alone while its neighbour was fine (its spot), and a Wi-Fi
terminal (no cell id).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.correlate.builder import M1, M2, M3, M4, Shop

M5 = "898310048160005"
REVERSED_AMT = 12_345
SETTLED_RRN = "502000000001"  # not one Shop.new_rrn gives
REFUSED_RRN = "509999999999"
REFUSED_DEV = "DEV00009"
QR_ORDER = "WX20250107130000001"
CELL_DOWN = "460-00-5001"
CELL_SPOT = "460-00-7777"
CELL_DOWN_DEVS = [f"DEVD000{n}" for n in (1, 2, 3, 4)]
SPOT_DEV = "DEVE0001"


def _signal(shop: Shop, dev: str, t: int, cell: str | None) -> None:
    body: dict[str, object] = {"ev": "signal", "rat": "lte", "rsrp": -98, "reg": 1}
    if cell is not None:
        body["cell"] = cell
    else:
        body["rat"], body["rssi"] = "wifi", -60
        del body["rsrp"]
    shop.record(dev, "d", body, t)


def _outage(shop: Shop, dev: str, start: int, end: int, stage: str) -> None:
    shop.record(dev, "d", {"ev": "link_down", "stage": stage, "why": "lost"}, start)
    up = {"ev": "link_up", "down_ms": (end - start) * 1000, "tries": 3}
    shop.record(dev, "d", up, end)


def build(url: str, workdir: Path, now: float | None = None) -> None:
    now = time.time() if now is None else now
    shop = Shop(url, workdir)
    try:
        for mid in (M1, M2, M3, M4):
            shop.merchant(mid)
        shop.merchant(M5, acquirer="ACQ2")
        # M1: reversed in an outage; one sale paid.
        s = shop.sale("2025-01-07 15:00", REVERSED_AMT, st="no_response")
        shop.outage("2025-01-07 14:59", "2025-01-07 15:04", stage="tls", why="handshake timeout")
        shop.later(s, "2025-01-07 15:05", st="reversed", rv="98")
        paid = shop.sale("2025-01-07 10:00", 5_000, rrn=SETTLED_RRN)
        shop.cleared(paid, on="2025-01-08")
        qr = shop.sale("2025-01-07 13:00", 2_990, ch="qr", ord=QR_ORDER)
        shop.cleared(qr, on="2025-01-08")
        shop.payout("2025-01-08")
        # Three healthy merchants of ACQ1 unpaid on one day.
        for n, mid in enumerate((M2, M3, M4), start=2):
            shop.sale("2025-01-07 16:00", 20_000, mid=mid, tid=f"{n}0000001", dev=f"DEV0000{n}")
        shop.detail_file("2025-01-08")
        # M5: a payout that held some money back.
        for at, amt in (("2025-01-07 11:00", 10_000), ("2025-01-07 12:00", 30_000)):
            r = shop.sale(at, amt, mid=M5, tid="50000001", dev="DEV00005")
            shop.cleared(r, on="2025-01-08")
        shop.payout("2025-01-08", M5, suspend=4_000)
        # A re-keyed device: its whole upload is refused, the receipt stays on the terminal.
        shop.provision(b"k" * 32, dev=REFUSED_DEV)
        shop.sale("2025-01-07 17:00", 8_800, dev=REFUSED_DEV, tid="10000009", rrn=REFUSED_RRN)
        shop.upload(dev=REFUSED_DEV, key=b"x" * 32)
        # Cells.
        t = int(now)
        for dev in [*CELL_DOWN_DEVS, "DEVD0005"]:
            _signal(shop, dev, t - 3 * 3600, CELL_DOWN)
        for n, dev in enumerate(CELL_DOWN_DEVS):
            _outage(shop, dev, t - 7200 + 30 * n, t - 6000, "link")
        for dev in (SPOT_DEV, "DEVE0002"):
            _signal(shop, dev, t - 3 * 3600, CELL_SPOT)
        _outage(shop, SPOT_DEV, t - 3600, t - 3000, "tcp")
        _signal(shop, "DEVW0001", t - 3 * 3600, None)
        _outage(shop, "DEVW0001", t - 1800, t - 1700, "dhcp")
        shop.run("2025-01-09 12:00")  # uploads what the devices hold, imports the files
    finally:
        shop.close()
