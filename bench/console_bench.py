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

The store is filled inside the database by `console_fill.py` (heartbeats as the collector
writes them, `--sales` card sales a day per device, no settlement file: each sale's finding
waits for the acquirer's file; one device in 50 silent with sales unsent); filling is not
timed. With `--keep DIR` the store stays for the next run: SQLite's file, or PostgreSQL's
data folder (the server is started on it again).

    .venv/bin/python bench/console_bench.py [--devices 10000] [--days 1 3] [--db sqlite|pg|both]
        [--writer] [--device [--before]] [--sales 10] [--keep DIR] [--skip-fleet]
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
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import console_fill
import httpx
from daozhang.console.app import build_app
from daozhang.console.fleetview import fleet_rows
from daozhang.console.users import add_user, session_secret
from daozhang.lab.postgres import TempPostgres
from daozhang.ports import free_port, wait_listening
from daozhang.schema import open_database
from daozhang.store import Store

NOW = 1_780_000_000
DAY = 86_400
PASSWORD = "bench password 1"


def _sig(n: int) -> dict[str, object]:
    return {"rat": "lte", "rsrp": -90 - n % 30, "sinr": 5, "reg": 1, "cell": f"460-00-{n % 700}"}


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
    disk: Path, sales: int = 0, device: bool = False, before: bool = False, fleet: bool = True,
) -> None:  # fmt: skip
    def say(text: str) -> None:
        print(text, flush=True)

    with open_database(url) as store:
        if fresh:
            started = time.monotonic()
            n = console_fill.fill(store, devices, days, sales, NOW, disk, say)
            say(f"  filled {n:,} heartbeats in {time.monotonic() - started:.0f} s (not timed)")
        else:
            n = int(store.query("SELECT COUNT(*) FROM heartbeats")[0][0])
        if not fleet:
            c = Served(url)
            if device:
                _device_pages(url, c, engine, devices, days, passes, before, say)
            c.stop()
            return
        base = best_of(passes, lambda: baseline(store))
        snapshot = best_of(passes, lambda: fleet_rows(store, NOW))
    c = Served(url)
    first = best_of(1, lambda: c.get("/fleet"))  # computes the snapshot
    page = best_of(passes, lambda: c.get("/fleet"))
    live = best_of(passes, lambda: c.get("/fleet/live"))
    filtered = best_of(passes, lambda: c.get("/fleet?problem=silent_unsent"))
    say(f"  first page after start (waits for the snapshot): {_ms(first)}")
    with open_database(url, migrate=False, create=False) as store:
        counts = Counter(r.problem_code for r in fleet_rows(store, NOW).rows)
    say(f"  devices by problem: {dict(sorted(counts.items()))}")
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


def pg_databases(pg: TempPostgres) -> set[str]:
    with open_database(pg.url("postgres"), migrate=False) as store:
        return {str(r[0]) for r in store.query("SELECT datname FROM pg_database")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--days", type=float, nargs="+", default=[1.0])
    parser.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--writer", action="store_true")
    parser.add_argument("--device", action="store_true", help="time the device page too")
    parser.add_argument("--before", action="store_true", help="and the whole-store analysis")
    parser.add_argument("--skip-fleet", action="store_true", help="only the device page")
    parser.add_argument("--sales", type=int, default=10, help="receipts per device and day")
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the filled store (SQLite file, PostgreSQL data) here; reused next time",
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
                        folder, args.sales, args.device, args.before,
                        not args.skip_fleet)  # fmt: skip
                if args.keep is None:
                    os.unlink(path)
            if args.db in ("pg", "both"):
                pg = pg or TempPostgres((args.keep or work) / "pg").start()
                name = f"console_{args.devices}_{int(days * 10)}"
                fresh = name not in pg_databases(pg)
                url = pg.create_database(name) if fresh else pg.url(name)
                run_one(url, "PostgreSQL", args.devices, days, args.passes, args.writer, fresh,
                        args.keep or work, args.sales, args.device, args.before,
                        not args.skip_fleet)  # fmt: skip
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
