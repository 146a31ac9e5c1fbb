"""Flashing N virtual boards at once vs one after the other, and a re-flash vs a first flash.

Baselines in the same run: `--jobs 1` (sequential) for the parallel figure; the first flash for
the re-flash figure (which writes nothing and only probes, verifies, reboots and self-tests).
Usage: .venv/bin/python bench/flash_parallel.py [N]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.board.manager import VirtualBoard

FLASH = 512 * 1024  # a 256K heap: the whole agent runs from flash (bytecode on the unix heap)


def flash(ports: list[str], jobs: int, broker: str) -> float:
    from daozhang.cli import main

    ids = ",".join(f"BENCH{n:03d}" for n in range(len(ports)))
    start = time.perf_counter()
    status = main(
        [
            "flash",
            "--board",
            "virtual",
            "--port",
            ",".join(ports),
            "--device-id",
            ids,
            "--broker",
            broker,
            "--jobs",
            str(jobs),
        ]
    )
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"flash failed with status {status}")
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    with tempfile.TemporaryDirectory(prefix="dz-bench-flash-") as tmp:
        os.environ["DAOZHANG_STATE"] = str(Path(tmp) / "state")
        broker = Mosquitto(workdir=Path(tmp) / "mosquitto").start()
        boards: list[VirtualBoard] = []
        try:
            figures = {}
            for jobs in (1, n):
                for vb in boards:
                    vb.stop(power_cut=True)
                boards = []
                for i in range(n):
                    vb = VirtualBoard.named(f"b{jobs}x{i}")
                    vb.start(Path(tmp) / f"b{jobs}x{i}.img", FLASH, heapsize="256K")
                    boards.append(vb)
                ports = [str(vb.tty) for vb in boards]
                figures[f"first, jobs={jobs}"] = flash(ports, jobs, broker.url)
            figures[f"re-flash, jobs={n}"] = flash(ports, n, broker.url)
        finally:
            for vb in boards:
                vb.stop(power_cut=True)
            broker.stop()
    seq, par, again = figures.values()
    print(f"\n{n} boards: sequential {seq:.1f} s, parallel {par:.1f} s, re-flash {again:.1f} s")
    print(f"parallel speed-up x{seq / par:.2f} (vs --jobs 1); re-flash / first = {again / par:.2f}")


if __name__ == "__main__":
    main()
