"""`daozhang prune` on SQLite while a collector keeps committing beside it.

For 300 devices with 14 days of heartbeats (one per `hb_s` = 300 s), keeping 7 days, this times
the prune (chunks of 2,000 rows by id, each its own transaction) against the same deletion done
as one `DELETE` statement in one transaction, on an identical copy of the store in the same
run. During each, a writer thread stores one heartbeat every 20 ms, as a collector would, and
the bench reports how long its commits took: one big DELETE holds SQLite's only write lock
until it is done, and every ack waits behind it. Filling the store is not timed.

    .venv/bin/python bench/prune.py [--devices N] [--days N] [--keep-days N]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from daozhang.collector.retention import DAY_S, prune
from daozhang.collector.timeline import ingest_heartbeat
from daozhang.lab.devicewire import heartbeat_bytes
from daozhang.schema import open_database
from daozhang.store import Store
from fleet_queries import HB_S, NOW, fill

WRITE_EVERY_S = 0.02


def one_statement(store: Store, keep_days: float) -> None:
    with store.transaction() as tx:
        tx.execute(
            "DELETE FROM heartbeats WHERE received_at < ? AND id NOT IN"
            " (SELECT MAX(id) FROM heartbeats GROUP BY dev)",
            (NOW - keep_days * DAY_S,),
        )


def with_a_writer(url: str, step: Callable[[Store], object]) -> tuple[float, list[float]]:
    """(seconds the step took, how long each of the writer's commits meanwhile took)."""
    done = threading.Event()
    commits: list[tuple[float, float]] = []  # (began, ended)

    def writer() -> None:
        hb = heartbeat_bytes("WRITER", jrec=0)
        with open_database(url) as store:
            while not done.is_set():
                start = time.perf_counter()
                with store.transaction() as tx:
                    ingest_heartbeat(tx, "WRITER", hb, NOW)
                commits.append((start, time.perf_counter()))
                time.sleep(WRITE_EVERY_S)

    thread = threading.Thread(target=writer)
    with open_database(url) as store:
        thread.start()
        time.sleep(0.5)  # the writer is committing when the step begins
        start = time.perf_counter()
        step(store)
        end = time.perf_counter()
        done.set()
        thread.join()
    return end - start, [e - b for b, e in commits if e > start and b < end]


def left(url: str) -> int:
    with open_database(url) as store:
        return int(store.query("SELECT COUNT(*) FROM heartbeats WHERE dev <> 'WRITER'")[0][0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--keep-days", type=float, default=7)
    args = parser.parse_args()
    per_device = int(args.days * DAY_S / HB_S)
    work = Path(tempfile.mkdtemp(prefix="dz-prune-", dir="/var/tmp"))  # the real disk
    try:
        chunked, single = work / "chunked.db", work / "single.db"
        with open_database(f"sqlite:///{chunked}") as store:
            fill(store, args.devices, per_device)
        shutil.copyfile(chunked, single)  # closed: the WAL is checkpointed into the file
        total = args.devices * per_device
        runs = {
            "one DELETE": with_a_writer(
                f"sqlite:///{single}", lambda s: one_statement(s, args.keep_days)
            ),
            "prune": with_a_writer(
                f"sqlite:///{chunked}", lambda s: prune(s, keep_days=args.keep_days, now=NOW)
            ),
        }
        kept = {left(f"sqlite:///{single}"), left(f"sqlite:///{chunked}")}
        assert len(kept) == 1, f"the two deletions left different rows: {kept}"
        deleted = total - kept.pop()
        base = runs["one DELETE"][0]
        print(f"{args.devices} devices x {per_device:,} heartbeats, {deleted:,} deleted")
        print("| | seconds (x one DELETE) | rows/s | writer commits | longest commit | p99 |")
        print("|---|---|---|---|---|---|")
        for name, (elapsed, commits) in runs.items():
            ranked = sorted(commits)
            p99 = ranked[int(0.99 * (len(ranked) - 1))]
            print(
                f"| {name} | {elapsed:.2f} ({elapsed / base:.2f}x) | {deleted / elapsed:,.0f}"
                f" | {len(commits)} | {max(commits):.3f} s | {p99:.3f} s |",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
