"""Peak memory and speed of `settle import` on a large detail file (issue 25: 200 MB needed
3 GB; goals: 1 GB in <= 200 MB, >= 50,000 rows/s on SQLite).

Writes one detail file of about `--mb` megabytes (unique rows whose amounts add up): the
generic CSV; with `--format unionpay` the UnionPay-style fixed-width file; with `acom` or
`acoma` UnionPay's acquirer journal, with `zm` the merchant's ZM file (the sample's record
repeated, trace and key advancing).
Then imports it into a fresh SQLite store in a child process and reports the child's peak
RSS, wall and CPU time, against the same child only reading and splitting the file (the floor
any importer must spend) and against SQLite alone: the same number of rows, as ready tuples,
inserted into `settle_detail` with its indexes in one transaction (what the store costs
whatever the reader does; `--explain` repeats that without some indexes and with larger page
caches). `--code DIR` imports a different checkout's `host_tools` (e.g. an export of main,
for "before").

    .venv/bin/python bench/settle_import.py [--mb 200] [--format unionpay|zm|acom|acoma]
        [--code DIR] [--keep] [--explain] [--into MB]

`--into MB` first imports a generic file of MB megabytes (not timed), then the `--mb` file
(the next settle day) into that larger table, whose indexes are then written row by row;
SQLite alone then inserts its rows into the same table.
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
elif mode == "split-fixed":
    with path.open("rb") as f:
        for line in f:
            rows += 1
elif mode == "store":
    # SQLite alone: only the executemany calls are timed (the tuples are made between them).
    from daozhang.schema import open_database
    n, cpu, wall = int(sys.argv[4]), 0.0, 0.0
    cache_kib, dropped = int(sys.argv[5]), sys.argv[6:]
    # "rebuild": as the importer stores a large file (settle/importer.py): the indexes
    # dropped first and built again after the rows, that building timed too.
    # "*": every index dropped, none built.
    rebuild = dropped == ["rebuild"]
    with open_database(db) as store, store.transaction() as tx:
        tx.execute(f"PRAGMA cache_size = -{cache_kib}")
        made = tx.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name = 'settle_detail' AND sql IS NOT NULL")
        if rebuild:  # the importer keeps the partial indexes of rows carrying a key
            made = [(name, sql) for name, sql in made if "<> ''" not in sql]
        if rebuild or dropped == ["*"]:
            dropped = [name for name, _ in made]
        made = made if rebuild else []
        for index in dropped:
            tx.execute(f"DROP INDEX {index}")
        fid = tx.execute("INSERT INTO settle_files (sha256, name, kind, format, encoding,"
            " acquirer, date_from, date_to, n_rows, imported_at) VALUES ('x', 'x', 'detail',"
            " 'generic', 'utf-8', '', NULL, NULL, 0, 0) RETURNING id")[0][0]
        sql = ("INSERT INTO settle_detail (file_id, line, settle_date, mid, tid, txn_time, typ,"
            " ch, bat, trc, rrn, orrn, pan, ck, amt, fee, settle_amt, direction, settle_type,"
            " check_flag, payout_id, ord, xid) VALUES (%d, %s)" % (fid, ", ".join("?" * 22)))
        for start in range(0, n, 1000):
            block = []
            for i in range(start, min(n, start + 1000)):
                amt = 1000 + i % 90_000
                fee = amt * 6 // 1000
                block.append((i + 2, "2025-01-07", f"898310048{i % 1000:06d}", f"{i % 10_000:08d}",
                    1736092800 + i % 86_400, "sale", "card", f"{i // 1_000_000:06d}",
                    f"{i % 1_000_000:06d}", f"{i:012d}", "", "622848******1234", "D", amt, fee,
                    amt - fee, "in", "T1", "Y", f"P{i % 1000:09d}", "", ""))
            c0, w0 = time.process_time(), time.perf_counter()
            tx.executemany(sql, block)
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
            rows += len(block)
        c0, w0 = time.process_time(), time.perf_counter()
        for _, index_sql in made:
            tx.execute(index_sql)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - w0
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"rows": rows, "s": wall, "cpu": cpu, "peak_mib": use.ru_maxrss / 1024}))
    sys.exit(0)
else:
    from daozhang.schema import open_database
    from daozhang.settle.importer import import_file
    with open_database(db) as store:
        rows = import_file(store, path, now=1767225600.0).rows
        if len(sys.argv) > 4 and sys.argv[4] == "unlink":
            # Read and committed: the file goes before the close copies the write-ahead log
            # into the database (a 1 GB file's store is 2.6 GB, its log as much again).
            path.unlink()
elapsed = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_SELF)
cpu = use.ru_utime + use.ru_stime
print(json.dumps({"rows": rows, "s": elapsed, "cpu": cpu, "peak_mib": use.ru_maxrss / 1024}))
"""


def write(path: Path, megabytes: int, day: int = 7) -> int:
    """Unique rows (trace, RRN and time advance) until the file reaches the size: sales of
    2025-01-(day - 1) settled on 2025-01-(day)."""
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
                    f"2025-01-{day:02d},898310048{n % 1000:06d},{n % 10_000:08d},"
                    f"2025-01-{day - 1:02d} "
                    f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d},sale,"
                    f"card,{n // 1_000_000:06d},{n % 1_000_000:06d},{n:012d},,"
                    f"622848******1234,D,{amt // 100}.{amt % 100:02d},{fee // 100}.{fee % 100:02d},"
                    f"{(amt - fee) // 100}.{(amt - fee) % 100:02d},in,T1,Y,P{n % 1000:09d}\r\n"
                )
                n += 1
            chunk = "".join(lines)
            f.write(chunk)
            size += len(chunk)
    return n


def write_fixed(path: Path, megabytes: int) -> int:
    """The same rows as `write`, as the UnionPay-style fixed-width file (H, D records, T)."""
    from daozhang.lab.sim.files import fixed_width_bytes

    target = megabytes * 1_000_000
    n = total = 0
    with path.open("wb") as f:
        size = 0
        while size < target:
            rows: list[dict[str, object]] = []
            for _ in range(10_000):
                amt = 1000 + n % 90_000
                fee = amt * 6 // 1000
                rows.append(
                    {
                        "settle_date": "2025-01-07",
                        "mid": f"898310048{n % 1000:06d}",
                        "tid": f"{n % 10_000:08d}",
                        "txn_time": 1736092800 + n % 86_400,
                        "typ": "sale",
                        "ch": "card",
                        "bat": f"{n // 1_000_000:06d}",
                        "trc": f"{n % 1_000_000:06d}",
                        "rrn": f"{n:012d}",
                        "orrn": "",
                        "pan": "622848******1234",
                        "ck": "D",
                        "amt": amt,
                        "fee": fee,
                        "settle_amt": amt - fee,
                        "direction": "in",
                        "settle_type": "T1",
                        "check_flag": "Y",
                        "payout_id": f"P{n % 1000:09d}",
                        "merchant_name": "上海测试便利店",
                    }
                )
                total += amt
                n += 1
            lines = fixed_width_bytes("2025-01-07", "ACQ1", rows).split(b"\r\n")
            chunk = b"".join(line + b"\r\n" for line in lines if line[:1] == b"D")
            f.write(lines[0] + b"\r\n" if size == 0 else b"")
            f.write(chunk)
            size += len(chunk)
        f.write(f"T {n:08d} {total:016d}\r\n".encode())
    return n


SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "settle" / "samples"


def write_journal(path: Path, megabytes: int, sample: str, profile: str) -> int:
    """UnionPay's files (ZM 600 bytes a record, ACOM 300, ACOMA 401): the sample's first record
    again and again, its trace and its key (RRN, or ZM's queryId) advancing."""
    from daozhang.settle import profiles

    layout = profiles.load()[profile].layout
    at, pos = {}, 0
    for name, width in layout:
        at[name] = (pos, pos + width)
        pos += width + 1
    (t0, t1), (k0, k1) = at["traceNo"], at["rrn" if "rrn" in at else "queryId"]
    record = (SAMPLES / sample).read_bytes().split(b"\r\n")[0]
    target = megabytes * 1_000_000
    n = size = 0
    with path.open("wb") as f:
        while size < target:
            chunk = b"".join(
                record[:t0]
                + f"{i % 1_000_000:06d}".encode()
                + record[t1:k0]
                + f"{i:0{k1 - k0}d}".encode()
                + record[k1:]
                + b"\r\n"
                for i in range(n, n + 10_000)
            )
            f.write(chunk)
            size += len(chunk)
            n += 10_000
    return n


def child(mode: str, path: Path, db: str, code: str | None, *more: str) -> dict[str, float]:
    env = dict(os.environ)
    if code:
        env["PYTHONPATH"] = str(Path(code) / "host_tools")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), db, *more],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# (what SQLite alone is given, page cache KiB, the settle_detail indexes dropped first)
_VARIANTS = [
    ("all indexes, written row by row (a file smaller than the table)", 32768, ()),
    ("without the ord and xid indexes", 32768, ("settle_detail_ord", "settle_detail_xid")),
    ("64 MiB cache", 65536, ()),
    ("128 MiB cache", 131072, ()),
    ("no index at all", 32768, ("*",)),
    ("indexes built after the rows (a file larger than the table)", 32768, ("rebuild",)),
]


def explain(folder: Path, n: int) -> None:
    """Where SQLite alone spends its time: the same inserts with fewer indexes or more cache."""
    for i, (what, cache_kib, dropped) in enumerate(_VARIANTS):
        db = folder / f"variant{i}.db"
        got = child("store", db, f"sqlite:///{db}", None, str(n), str(cache_kib), *dropped)
        print(
            f"SQLite alone, {what}: {got['rows'] / got['cpu']:,.0f} rows per CPU s "
            f"({got['cpu'] / got['rows'] * 1e6:.1f} µs a row), peak RSS {got['peak_mib']:.0f} MiB"
        )
        for p in folder.glob(f"variant{i}.db*"):
            p.unlink()


_JOURNALS = {
    "zm": "INN25010701ZM_898310048161234",
    "acom": "IND25010701ACOM",
    "acoma": "IND25010701ACOMA",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument(
        "--format", choices=("generic", "unionpay", "zm", "acom", "acoma"), default="generic"
    )
    parser.add_argument("--code", help="a checkout whose host_tools is imported instead")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also SQLite alone without some indexes and with larger page caches",
    )
    parser.add_argument(
        "--into",
        type=int,
        default=0,
        help="first import a generic file of this many MB: the --mb file goes into a larger table",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="dz-settle-bench-"))
    fixed = args.format != "generic"
    db = f"sqlite:///{folder / 'bench.db'}"
    if args.into:
        if fixed:
            raise SystemExit("--into takes the generic CSV")
        first = folder / "detail_20250107.csv"
        held = write(first, args.into)
        got = child("import", first, db, args.code, "unlink")
        print(f"the table: {held:,} rows imported first ({json.dumps(got)})", flush=True)
    t0 = time.perf_counter()
    if args.format in ("zm", "acom", "acoma"):
        sample = _JOURNALS[args.format]
        path = folder / sample
        n = write_journal(path, args.mb, sample, f"unionpay-{args.format}")
    elif args.into:
        path = folder / "detail_20250108.csv"
        n = write(path, args.mb, day=8)
    else:
        path = folder / ("detail_20250107.txt" if fixed else "detail_20250107.csv")
        n = write_fixed(path, args.mb) if fixed else write(path, args.mb)
    print(
        f"wrote {path.stat().st_size / 1e6:.0f} MB, {n:,} rows in {time.perf_counter() - t0:.1f} s"
    )
    size = path.stat().st_size  # the import child removes the file (disk) unless --keep
    floor = child("split-fixed" if fixed else "split", path, "", args.code)
    got = child("import", path, db, args.code, *([] if args.keep else ["unlink"]))
    print(f"import: {json.dumps(got)}", flush=True)
    if args.into:
        # SQLite alone into the same larger table: its indexes written row by row, as the
        # importer writes them there.
        bulk: list[str] = []
        store = child("store", path, db, None, str(n), "32768")
    else:
        for p in folder.glob("bench.db*"):
            p.unlink()  # disk: the next store is as large
        # SQLite alone stores the rows as the importer would: a file of 20 MB or more into an
        # empty table without the indexes, built after (settle/importer.py BULK_ROWS).
        bulk = ["rebuild"] if size >= 20_000_000 else []
        store = child(
            "store", path, f"sqlite:///{folder / 'store.db'}", None, str(n), "32768", *bulk
        )
    # CPU seconds as well as wall: on a shared machine the wall time says how busy it was.
    print(
        f"read + split: {floor['s']:.1f} s wall, {floor['cpu']:.1f} s CPU "
        f"({floor['rows'] / floor['cpu']:,.0f} rows per CPU s), "
        f"peak RSS {floor['peak_mib']:.0f} MiB\n"
        f"SQLite alone: {store['s']:.1f} s wall, {store['cpu']:.1f} s CPU "
        f"({store['rows'] / store['cpu']:,.0f} rows per CPU s): ready tuples into "
        f"settle_detail and its indexes{' (built after the rows)' if bulk else ''}\n"
        f"import:       {got['s']:.1f} s wall ({got['rows'] / got['s']:,.0f} rows/s), "
        f"{got['cpu']:.1f} s CPU ({got['rows'] / got['cpu']:,.0f} rows per CPU s, "
        f"{got['cpu'] / floor['cpu']:.1f}x the split, {got['cpu'] / store['cpu']:.2f}x SQLite "
        f"alone), peak RSS {got['peak_mib']:.0f} MiB"
    )
    if args.explain:
        explain(folder, n)
    if not args.keep:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
