"""The console's fleet page at fleet scale: 10,000 devices and days of heartbeats at one per
5 minutes, on SQLite and PostgreSQL.

Timed, best of `--passes`, on a store filled beforehand (filling is not timed):
- `snapshot`: `fleet_rows`, the read of every device the page is drawn from (the console
  recomputes it in the background, at most a quarter of the time: console/snapshot.py);
- `page`: GET /fleet from the real application served by uvicorn on loopback (in a thread of
  this process), logged in: session, snapshot, filtering, rendering, the socket;
- `live`: GET /fleet/live (the rows the page swaps in every few seconds);
- `baseline`: one indexed SELECT of the same rows the page reads: each device's latest
  heartbeat, through the (dev, t, id) index, fetched into Python;
- with `--writer`: a collector's commit latency (one heartbeat per commit, as fast as it goes)
  alone, and with ten page loads a second beside it;
- with `--device`: GET /device/DEV for 24 h, 7 d and 30 d (timeline, reboots and firmware,
  the device's sales classified: `correlate.device.analyse_device`), against one indexed SELECT
  of the rows its timeline reads (the device's heartbeats of the last 40 days through
  `(dev, t, id)`); with `--before` also the whole-store classification the page ran until
  then (`analyse(device=...)`), once.

Each device also gets `--sales` receipts a day (plain INSERTs, with the `device_terminals` row
the collector keeps), no settlement file: each sale's finding waits for the acquirer's file.

The heartbeats go in with plain INSERTs in time order (all devices per 5-minute tick), not
through the collector: a month of a 10,000-device fleet is 86 million rows, which the
collector's own path would take hours to write here. `--days` says how many days are written;
the page reads each device's latest heartbeat and its last day, both through indexes, so the
days before weigh only through the depth of the B-trees (the report says which were run).

    .venv/bin/python bench/console_bench.py [--devices 10000] [--days 1 3] [--db sqlite|pg|both]
        [--writer] [--device [--before]] [--sales 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from daozhang.console.app import build_app
from daozhang.console.fleetview import fleet_rows
from daozhang.console.users import add_user, session_secret
from daozhang.lab.postgres import TempPostgres
from daozhang.ports import free_port, wait_listening
from daozhang.schema import open_database
from daozhang.store import Store

NOW = 1_780_000_000
HB_S = 300
DAY = 86_400
PASSWORD = "bench password 1"
FWS = ("1.4.2", "1.4.3", "1.5.0")


def _sig(n: int) -> dict[str, object]:
    return {"rat": "lte", "rsrp": -90 - n % 30, "sinr": 5, "reg": 1, "cell": f"460-00-{n % 700}"}


def _mid(n: int) -> str:
    return f"8983100481{n // 20:05d}"


def fill(
    store: Store, devices: int, days: float, sales: int, progress: Callable[[str], None]
) -> int:
    devs = [f"D{d:05d}" for d in range(devices)]
    ticks = int(days * DAY / HB_S)
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO devices (dev, first_seen, last_seen, online, mid, tid)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    dev,
                    NOW - days * DAY,
                    NOW - (7200 if n % 50 == 0 else 60),
                    int(n % 50 != 0),
                    _mid(n),
                    f"{n:08d}",
                )
                for n, dev in enumerate(devs)
            ],
        )
        tx.executemany(
            "INSERT INTO ack_state (dev, epoch, upto, max_seen, first_at, updated_at)"
            " VALUES (?, 7, 1000, 1000, ?, ?)",
            [(dev, NOW - days * DAY, NOW - 60) for dev in devs],
        )
        tx.executemany(
            "INSERT INTO device_terminals (dev, mid, tid, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?)",
            [(dev, _mid(n), f"{n:08d}", NOW - days * DAY, NOW - 60) for n, dev in enumerate(devs)],
        )
    _sales(store, devs, days, sales)
    bodies = [json.dumps({"sig": _sig(n), "heap": 30000}) for n in range(devices)]
    written = 0
    started = time.monotonic()
    # The heartbeat indexes are built once at the end (the same statements as the
    # migrations'), not row by row: the same B-trees, far faster to fill.
    with store.transaction() as tx:
        for index in _HB_INDEXES:
            tx.execute(f"DROP INDEX {index.split()[2]}")
    rows: list[tuple[object, ...]] = []
    for tick in range(ticks):
        t = NOW - (ticks - tick) * HB_S
        rows += [
            # One device in 50 went silent two hours ago with records unsent.
            (
                dev,
                t + 1,
                t,
                7,
                1,
                tick * HB_S * 1000,
                FWS[n % 3],
                "power_on",
                "up",
                (5 if n % 50 == 0 else 0),
                990 + (5 if n % 50 == 0 else 0),
                1 if tick % 97 == n % 97 else 0,
                1,
                0,
                bodies[n],
            )
            for n, dev in enumerate(devs)
            if not (n % 50 == 0 and t > NOW - 7200)
        ]
        if tick % 12 != 11 and tick != ticks - 1:
            continue  # one commit per hour of heartbeats
        with store.transaction() as tx:
            tx.executemany(
                "INSERT INTO heartbeats (dev, received_at, t, epoch, boot, up, fw, cause, link,"
                " jrec, next_seq, recon, sync_ok, sync_fail, body_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        written += len(rows)
        rows = []
        if tick % 288 == 287:
            rate = written / (time.monotonic() - started)
            progress(f"  {written:,} heartbeats ({rate:,.0f}/s)")
    progress("  building the heartbeat indexes")
    with store.transaction() as tx:
        for index in _HB_INDEXES:
            tx.execute(index)
        tx.execute("ANALYZE")
    return written


def _sales(store: Store, devs: list[str], days: float, per_day: int) -> None:
    """`per_day` approved card sales per device and day, spread over the business hours."""
    n_sales = int(days * per_day)
    for first in range(0, len(devs), 500):
        rows = []
        for n in range(first, min(first + 500, len(devs))):
            dev, mid, tid = devs[n], _mid(n), f"{n:08d}"
            for k in range(n_sales):
                lt = NOW - int(days * DAY) + k * DAY // max(per_day, 1) + n % 600
                trc = f"{k % 999_999 + 1:06d}"
                rows.append((mid, tid, "000001", trc, dev, 7, k + 1, "sale", "card",
                             1_000 + k % 5_000, "156", "622848******1234", "debit", "chip",
                             lt, "approved", "00", f"{n:05d}{k:07d}", "123456",
                             lt, lt, float(lt + 5)))  # fmt: skip
        with store.transaction() as tx:
            tx.executemany(
                "INSERT INTO receipts (mid, tid, bat, trc, dev, epoch, seq, typ, ch, amt, cur,"
                " pan, ck, ent, lt, st, rc, rrn, auth, t, placed_t, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )


_HB_INDEXES = (
    "CREATE INDEX heartbeats_dev ON heartbeats (dev, received_at)",
    "CREATE INDEX heartbeats_latest ON heartbeats (dev, id)",
    "CREATE INDEX heartbeats_event ON heartbeats (dev, t, id)",
)


def baseline(store: Store) -> int:
    """One indexed SELECT of the rows the page reads: each device's latest heartbeat."""
    rows = store.query(
        "SELECT d.dev, h.jrec, h.jold_s, h.link, h.body_json, h.fw, h.t FROM devices d"
        " JOIN heartbeats h ON h.id = (SELECT id FROM heartbeats WHERE dev = d.dev"
        " ORDER BY t DESC, id DESC LIMIT 1)"
    )
    return len(rows)


def device_baseline(store: Store, dev: str) -> int:
    """One indexed SELECT of the rows the device page's timeline reads: the device's
    heartbeats of the last 40 days (data.HEARTBEAT_LOOKBACK_S) through `(dev, t, id)`."""
    rows = store.query(
        "SELECT t, epoch, boot, up, jrec, recon, link, fw, cause FROM heartbeats"
        " WHERE dev = ? AND t BETWEEN ? AND ?",
        (dev, NOW - 40 * DAY, NOW),
    )
    return len(rows)


def best_of(passes: int, step: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


class Served:
    """The console application served by uvicorn in a thread, on a free port, logged in."""

    def __init__(self, url: str) -> None:
        import uvicorn

        with open_database(url) as store:
            if not store.query("SELECT 1 FROM console_users WHERE name = 'bench'"):
                add_user(store, "bench", "admin", PASSWORD)
            secret = session_secret(store)
        app = build_app(
            lambda: open_database(url, migrate=False, create=False), secret, now=lambda: float(NOW)
        )
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        assert wait_listening(port, 30), "the console did not start"
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        page = self.client.get("/login").text
        token = page.split('name="csrf" value="')[1].split('"')[0]
        form = {"name": "bench", "password": PASSWORD, "csrf": token}
        reply = self.client.post("/login", data=form)
        assert reply.status_code == 303, reply.text

    def get(self, path: str) -> None:
        reply = self.client.get(path)
        assert reply.status_code == 200, (path, reply.status_code)

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)


def _writer(url: str, seconds: float, out: Any) -> None:
    """A collector's commits, in a process of its own (as a collector is): one heartbeat per
    durable commit, as fast as it goes; the latencies go back through `out`."""
    latencies = []
    body = json.dumps({"sig": _sig(1)})
    with open_database(url, migrate=False, create=False) as store:
        end = time.monotonic() + seconds
        t = NOW
        while time.monotonic() < end:
            t += 1
            started = time.perf_counter()
            with store.transaction() as tx:
                tx.execute(
                    "INSERT INTO heartbeats (dev, received_at, t, epoch, boot, up, jrec,"
                    " next_seq, body_json) VALUES ('D00001', ?, ?, 7, 1, 0, 0, 990, ?)",
                    (t, t, body),
                )
            latencies.append(time.perf_counter() - started)
    out.put(latencies)


def writer_latency(url: str, c: Served | None, seconds: float) -> list[float]:
    """Commit latencies of the writer process for `seconds`, while (with `c`) ten fleet pages
    a second load beside it."""
    stop = threading.Event()
    loads = 0

    def pages() -> None:
        nonlocal loads
        assert c is not None
        while not stop.is_set():
            started = time.monotonic()
            c.get("/fleet/live")
            loads += 1
            stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    reader = threading.Thread(target=pages) if c is not None else None
    if reader is not None:
        reader.start()
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    proc = spawn.Process(target=_writer, args=(url, seconds, out))
    proc.start()
    latencies: list[float] = out.get()
    proc.join()
    stop.set()
    if reader is not None:
        reader.join()
        print(f"    ({loads / seconds:.1f} page loads/s beside the writer)", flush=True)
    return latencies


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def run_one(
    url: str, engine: str, devices: int, days: float, passes: int, writer: bool, fresh: bool,
    sales: int = 0, device: bool = False, before: bool = False,
) -> None:  # fmt: skip
    def say(text: str) -> None:
        print(text, flush=True)

    with open_database(url) as store:
        if fresh:
            started = time.monotonic()
            n = fill(store, devices, days, sales, say)
            say(f"  filled {n:,} heartbeats in {time.monotonic() - started:.0f} s (not timed)")
        else:
            n = int(store.query("SELECT COUNT(*) FROM heartbeats")[0][0])
        base = best_of(passes, lambda: baseline(store))
        snapshot = best_of(passes, lambda: fleet_rows(store, NOW))
    c = Served(url)
    first = best_of(1, lambda: c.get("/fleet"))  # computes the snapshot
    page = best_of(passes, lambda: c.get("/fleet"))
    live = best_of(passes, lambda: c.get("/fleet/live"))
    filtered = best_of(passes, lambda: c.get("/fleet?problem=silent_unsent"))
    say(f"  first page after start (waits for the snapshot): {_ms(first)}")
    say(
        f"| {engine} | {devices:,} | {days:g} | {n:,} | {_ms(base)} | {_ms(snapshot)}"
        f" ({snapshot / base:.1f}x) | {_ms(page)} ({page / base:.1f}x) | {_ms(live)}"
        f" | {_ms(filtered)} |"
    )
    if device:
        _device_pages(url, c, engine, devices, days, passes, before, say)
    if writer:
        alone = writer_latency(url, None, 10)
        beside = writer_latency(url, c, 10)
        for label, lat in (("alone", alone), ("10 pages/s beside", beside)):
            lat.sort()
            say(
                f"  writer {label}: {len(lat)} commits, median {_ms(statistics.median(lat))},"
                f" p99 {_ms(lat[int(len(lat) * 0.99)])}, max {_ms(lat[-1])}"
            )
    c.stop()


def _device_pages(
    url: str,
    c: Served,
    engine: str,
    devices: int,
    days: float,
    passes: int,
    before: bool,
    say: Callable[[str], None],
) -> None:
    """The device page of one device in the middle of the fleet, each range, against the
    SELECT of its heartbeats; `before`: the whole-store classification the page used to run."""
    dev = f"D{devices // 2 + 1:05d}"  # not one of the silent ones (every 50th)
    with open_database(url, migrate=False, create=False) as store:
        base = best_of(passes, lambda: device_baseline(store, dev))
        beats = device_baseline(store, dev)
        sold = int(store.query("SELECT COUNT(*) FROM receipts WHERE dev = ?", (dev,))[0][0])
    say(f"  device {dev}: {beats:,} heartbeats in 40 days, {sold:,} sales")
    say("| engine | devices | days | range | device page | baseline SELECT | ratio |")
    for range_name in ("24h", "7d", "30d"):
        page = best_of(passes, partial(c.get, f"/device/{dev}?range={range_name}"))
        say(f"| {engine} | {devices:,} | {days:g} | {range_name} | {_ms(page)} | {_ms(base)}"
            f" | {page / base:.1f}x |")  # fmt: skip
    if before:
        from daozhang.console.finder import analysed

        with open_database(url, migrate=False, create=False) as store:
            whole = best_of(1, lambda: analysed(store, NOW, device=dev))
        say(f"  before: the whole store classified for {dev}: {_ms(whole)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--days", type=float, nargs="+", default=[1.0])
    parser.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--writer", action="store_true")
    parser.add_argument("--device", action="store_true", help="time the device page too")
    parser.add_argument("--before", action="store_true", help="and the whole-store analysis")
    parser.add_argument("--sales", type=int, default=10, help="receipts per device and day")
    parser.add_argument(
        "--keep", type=Path, help="SQLite: keep the filled store in this folder, reuse it next time"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dz-console-", dir="/var/tmp"))  # the real disk
    work.chmod(0o755)  # PostgreSQL runs as its own user under it
    pg = None
    try:
        print(
            "| engine | devices | days | heartbeats | baseline SELECT | snapshot (every device)"
            " | fleet page | live rows | filtered page |\n|---|---|---|---|---|---|---|---|---|",
            flush=True,
        )
        for days in args.days:
            if args.db in ("sqlite", "both"):
                folder = args.keep or work
                path = folder / f"console-{args.devices}-{days:g}.db"
                fresh = not path.exists()
                url = f"sqlite:///{path}"
                run_one(url, "SQLite", args.devices, days, args.passes, args.writer, fresh,
                        args.sales, args.device, args.before)  # fmt: skip
                if args.keep is None:
                    os.unlink(path)
            if args.db in ("pg", "both"):
                pg = pg or TempPostgres(work / "pg").start()
                url = pg.create_database(f"console_{int(days * 10)}")
                run_one(url, "PostgreSQL", args.devices, days, args.passes, args.writer, True,
                        args.sales, args.device, args.before)  # fmt: skip
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
