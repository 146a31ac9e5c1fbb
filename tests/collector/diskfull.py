"""A collector whose database sits on a small filesystem that a filler fills and empties over
and over while devices upload: the test (short) and the bench (10,000 records) both run it."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from daozhang.lab.publisher import DevicePublisher, run_all
from daozhang.ports import free_port
from daozhang.schema import open_database

from tests.collector.procs import CollectorProcess
from tests.collector.streams import stream
from tests.waiting import wait_until


@contextlib.contextmanager
def small_filesystem(mountpoint: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes` at `mountpoint` (needs root); unmounted afterwards."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(mountpoint)],
        check=True,
        capture_output=True,
    )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)


def can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


class Filler:
    """Fills the filesystem to the last byte, holds it full, empties it; again and again."""

    def __init__(self, folder: Path, full_s: float, empty_s: float) -> None:
        self.path = folder / "filler"
        self.full_s, self.empty_s = full_s, empty_s
        self.fills = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="filler", daemon=True)

    def start(self) -> Filler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.path.unlink(missing_ok=True)

    def _run(self) -> None:
        chunk = b"\0" * 65536
        while not self._stop.is_set():
            with self.path.open("wb", buffering=0) as f:
                try:
                    while True:
                        f.write(chunk if self.fills % 2 else chunk[:4096])
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
            self.fills += 1
            self._stop.wait(self.full_s)
            self.path.unlink()
            self._stop.wait(self.empty_s)


@dataclass
class Outcome:
    finished: bool  # every device saw all its records acked
    exit_code: int | None  # None: the collector was still running at the end
    fills: int
    publishers: list[DevicePublisher]
    log: str
    metrics: str
    seconds: float


def run_while_filling(
    broker: str,
    db_url: str,
    folder: Path,
    workdir: Path,
    *,
    devices: int,
    records: int,
    timeout_s: float,
    extra: tuple[str, ...] = (),
    full_s: float = 0.4,
    empty_s: float = 0.4,
    fills_at_least: int = 0,
) -> Outcome:
    """With `fills_at_least` N, each device's records are released in N parts, part k once the
    disk was filled k times: the run sees N fills however fast the machine uploads."""
    port = free_port()
    proc = CollectorProcess(
        broker, db_url, workdir, "full1", "--metrics-port", str(port), *extra
    ).start()
    pubs = [
        DevicePublisher(broker, f"FULL{i}", 2000 + i, stream(records // devices, i), per_batch=10)
        for i in range(devices)
    ]
    filler = Filler(folder, full_s, empty_s)
    if fills_at_least:
        for p in pubs:
            p.released = 0
        threading.Thread(target=_release, args=(pubs, filler, fills_at_least), daemon=True).start()
    started = time.monotonic()
    try:
        for p in pubs:
            p.start()
        filler.start()
        finished = run_all(pubs, timeout_s)
        filler.stop()
        seconds = time.monotonic() - started
        # What was acked from the inbox is stored once uploads pause.
        wait_until(lambda: _query(db_url, "SELECT COUNT(*) FROM inbox") == [(0,)], 60)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                metrics = r.read().decode()
        except OSError as exc:  # the collector is gone: the outcome says so
            metrics = f"no scrape: {exc}"
        assert proc.process is not None
        exit_code = proc.process.poll()
    finally:
        filler.stop()
        for p in pubs:
            p.stop()
        proc.stop()
    return Outcome(finished, exit_code, filler.fills, pubs, proc.log.read_text(), metrics, seconds)


def _release(pubs: list[DevicePublisher], filler: Filler, parts: int) -> None:
    """Let each device send part k of its records once the disk has been filled k times."""
    while any(p.released < len(p.records) for p in pubs):
        for p in pubs:
            p.released = len(p.records) * min(filler.fills, parts) // parts
        time.sleep(0.01)


def _query(db_url: str, sql: str) -> list[tuple[object, ...]]:
    with open_database(db_url, migrate=False) as store:
        return store.query(sql)
