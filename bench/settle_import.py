"""Peak memory and speed of `settle import` on a large generic detail CSV (issue 25: 200 MB
needed 3 GB; goals: 1 GB in <= 200 MB, >= 50,000 rows/s on SQLite).

Writes one detail file of about `--mb` megabytes (unique rows whose amounts add up), then
imports it into a fresh SQLite store in a child process and reports the child's peak RSS and
wall time, against the same child only reading and splitting the file (the floor: what any
importer must spend) in the same run. `--code DIR` imports a different checkout's
`host_tools` (e.g. a worktree of main, for "before").

    .venv/bin/python bench/settle_import.py [--mb 200] [--code DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = (
    "settle_date,merchant_id,terminal_id,txn_time,txn_type,channel,batch_no,trace_no,rrn,"
    "orig_rrn,card_masked,card_kind,amount,fee,settle_amount,fund_direction,settle_type,"
    "check_flag,payout_id\r\n"
)

CHILD = r"""
import csv, io, json, resource, sys, time
from pathlib import Path
mode, path, db = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
rows = 0
if mode == "split":
    with path.open("r", encoding="utf-8", newline="") as f:
        for cells in csv.reader(f):
            rows += 1
else:
    from daozhang.schema import open_database
    from daozhang.settle.importer import import_file
    with open_database(db) as store:
        rows = import_file(store, path, now=1767225600.0).rows
elapsed = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_SELF)
cpu = use.ru_utime + use.ru_stime
print(json.dumps({"rows": rows, "s": elapsed, "cpu": cpu, "peak_mib": use.ru_maxrss / 1024}))
"""


def write(path: Path, megabytes: int) -> int:
    """Unique rows (trace, RRN and time advance) until the file reaches the size."""
    target = megabytes * 1_000_000
    n = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        size = len(HEADER)
        while size < target:
            lines = []
            for _ in range(10_000):
                amt = 1000 + n % 90_000
                fee = amt * 6 // 1000
                sec = n % 86_400
                lines.append(
                    f"2025-01-07,898310048{n % 1000:06d},{n % 10_000:08d},"
                    f"2025-01-06 {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d},sale,"
                    f"card,{n // 1_000_000:06d},{n % 1_000_000:06d},{n:012d},,"
                    f"622848******1234,D,{amt // 100}.{amt % 100:02d},{fee // 100}.{fee % 100:02d},"
                    f"{(amt - fee) // 100}.{(amt - fee) % 100:02d},in,T1,Y,P{n % 1000:09d}\r\n"
                )
                n += 1
            chunk = "".join(lines)
            f.write(chunk)
            size += len(chunk)
    return n


def child(mode: str, path: Path, db: str, code: str | None) -> dict[str, float]:
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = str(Path(code) / "host_tools")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), db],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--code", help="a checkout whose host_tools is imported instead")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dz-settle-bench-"))
    path = folder / "detail_20250107.csv"
    t0 = time.perf_counter()
    n = write(path, args.mb)
    print(
        f"wrote {path.stat().st_size / 1e6:.0f} MB, {n:,} rows in {time.perf_counter() - t0:.1f} s"
    )
    floor = child("split", path, "", args.code)
    db = f"sqlite:///{folder / 'bench.db'}"
    got = child("import", path, db, args.code)
    # CPU seconds as well as wall: on a shared machine the wall time says how busy it was.
    print(
        f"read + split: {floor['s']:.1f} s wall, {floor['cpu']:.1f} s CPU "
        f"({floor['rows'] / floor['cpu']:,.0f} rows per CPU s), "
        f"peak RSS {floor['peak_mib']:.0f} MiB\n"
        f"import:       {got['s']:.1f} s wall ({got['rows'] / got['s']:,.0f} rows/s), "
        f"{got['cpu']:.1f} s CPU ({got['rows'] / got['cpu']:,.0f} rows per CPU s, "
        f"{got['cpu'] / floor['cpu']:.1f}x the split), peak RSS {got['peak_mib']:.0f} MiB"
    )
    if not args.keep:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
