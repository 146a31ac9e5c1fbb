"""`daozhang correlate` with every output, against classification alone, in one run: wall time,
CPU time (user + system) and peak memory (RSS, as `/usr/bin/time -v` reports them, from
`os.wait4`'s rusage) of each, in a child process of its own; the ratios by wall and by CPU.

Goal (issue 24 item 6): at 10,000,000 receipts, every output (terminal table, `--json`,
`--csv`, `--html`, recording the findings) in <= 1 GB peak memory and <= 2x the time of the
classification alone.

- `classify`: the baseline. The streamed classification (correlate/stream.py), every chunk
  read and classified, its findings dropped: what every output needs at the least.
- `outputs`: `daozhang correlate --json --csv --html` with the terminal table (its stdout to
  a file), `--no-record`.
- `payouts`: `daozhang correlate --payouts --no-record` (the payout table).
- `record` (with `--record`): `daozhang correlate --quiet`, recording the findings; it writes
  into the store, so never on the 10M lookup store (use a store of your own: `--populate`).
- `whole` (with `--whole`): the in-memory `analyse` of before, for comparison (not at 10M:
  it would need over 20 GB).

The 10M store is the lookup bench's (bench/lookup_bench.py, bench/README.md), only read here.
With `--null`, JSON and CSV go to /dev/null (their cost counted, their 10+ GB not written).

    nice -n 10 .venv/bin/python bench/correlate_stream_bench.py \
        --db /var/tmp/daozhang-lookup-bench/lookup-10000000.db --null
    nice -n 10 .venv/bin/python bench/correlate_stream_bench.py \
        --populate 1000000 --db /var/tmp/h-stream-bench/correlate-1000000.db --record --whole
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

START = date(2025, 3, 3)  # the lookup and correlate benches' fortnight
AS_OF = f"{START + timedelta(days=17)} 00:00"


def child(mode: str, url: str, as_of: str, out: Path, null: bool) -> None:
    """One measurement, in this process; prints what it did as JSON on the last line."""
    from daozhang.cli import main

    t0 = time.perf_counter()
    n = 0
    if mode == "classify":
        from daozhang.correlate.engine import analyse_chunks
        from daozhang.schema import open_database
        from daozhang.units import BEIJING

        when = datetime.strptime(as_of, "%Y-%m-%d %H:%M").replace(tzinfo=BEIJING).timestamp()
        with open_database(url, create=False) as store:
            for chunk in analyse_chunks(store, when)[1]:
                n += len(chunk.findings)
    elif mode == "whole":
        from daozhang.correlate.engine import analyse
        from daozhang.schema import open_database
        from daozhang.units import BEIJING

        when = datetime.strptime(as_of, "%Y-%m-%d %H:%M").replace(tzinfo=BEIJING).timestamp()
        with open_database(url, create=False) as store:
            n = len(analyse(store, when).findings)
    else:
        argv = ["correlate", "--db", url, "--as-of", as_of]
        if mode == "outputs":
            json_out = "/dev/null" if null else str(out / "findings.json")
            csv_out = "/dev/null" if null else str(out / "findings.csv")
            argv += ["--json", json_out, "--csv", csv_out, "--html", str(out / "report.html")]
            argv += ["--no-record"]
        elif mode == "payouts":
            argv += ["--payouts", "--no-record"]
        elif mode == "record":
            argv += ["--quiet"]
        code = main(argv)
        if code:
            raise SystemExit(code)
    print(json.dumps({"wall": time.perf_counter() - t0, "findings": n}), file=sys.stderr)


def measure(mode: str, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Run one mode in a child; its wall time and its own peak RSS (os.wait4's rusage)."""
    cmd = [sys.executable, __file__, "--child", mode, "--db", str(args.db), "--as-of", args.as_of,
           "--out", str(out)] + (["--null"] if args.null else [])  # fmt: skip
    t0 = time.perf_counter()
    with (out / f"{mode}.stdout").open("w") as stdout, (out / f"{mode}.stderr").open("w") as err:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{mode} failed: {(out / f'{mode}.stderr').read_text()[-2000:]}")
    inner = json.loads((out / f"{mode}.stderr").read_text().strip().splitlines()[-1])
    return {"wall": wall, "inner": inner["wall"], "rss_mib": usage.ru_maxrss / 1024,
            "cpu": usage.ru_utime + usage.ru_stime}  # fmt: skip


def _sizes(out: Path) -> str:
    found = []
    for name in ("findings.json", "findings.csv", "report.html"):
        if (out / name).exists():
            found.append(f"{name} {(out / name).stat().st_size / 2**20:.1f} MiB")
    rows = out / "report.html.d"
    if rows.is_dir():
        files = list(rows.iterdir())
        total = sum(f.stat().st_size for f in files) / 2**20
        found.append(f"report.html.d {len(files)} files {total:.1f} MiB")
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", type=Path, required=True, help="SQLite store file")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--populate", type=int, help="fill --db first (correlate_bench.py)")
    parser.add_argument("--record", action="store_true", help="also measure recording")
    parser.add_argument("--whole", action="store_true", help="also the in-memory analyse")
    parser.add_argument("--null", action="store_true", help="JSON and CSV to /dev/null")
    parser.add_argument("--out", type=Path, help="output folder (default: a temporary one)")
    parser.add_argument("--modes", default="classify,outputs,payouts",
                        help="comma-separated, classify first (default %(default)s)")  # fmt: skip
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = f"sqlite:///{args.db}"
    if args.child:
        child(args.child, url, args.as_of, args.out, args.null)
        return 0
    if args.populate and not args.db.exists():
        sys.path.insert(0, str(Path(__file__).parent))
        from correlate_bench import populate

        args.db.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        populate(url, args.populate, args.populate // 10)
        print(f"populated {args.populate} receipts in {time.perf_counter() - t0:.0f} s")
    out = args.out or Path(tempfile.mkdtemp(prefix="dz-stream-bench-", dir="/var/tmp"))
    out.mkdir(parents=True, exist_ok=True)
    modes = args.modes.split(",")
    if modes[0] != "classify":
        parser.error("--modes: classify first (the baseline)")
    modes += ["record"] if args.record else []
    modes += ["whole"] if args.whole else []
    print(f"store {args.db} ({args.db.stat().st_size / 2**30:.1f} GiB), as of {args.as_of},"
          f" outputs in {out}")  # fmt: skip
    results = {}
    for mode in modes:
        results[mode] = r = measure(mode, args, out)
        ratio = r["wall"] / results["classify"]["wall"]
        by_cpu = r["cpu"] / results["classify"]["cpu"]
        print(f"{mode:9s} wall {r['wall']:8.1f} s  ({ratio:4.2f}x classify)  CPU {r['cpu']:8.1f} s"
              f"  ({by_cpu:4.2f}x)  peak RSS {r['rss_mib']:7.0f} MiB", flush=True)  # fmt: skip
    print("files:", _sizes(out))
    worst = max(r["rss_mib"] for m, r in results.items() if m != "whole")
    ratio = max(r["wall"] for m, r in results.items() if m != "whole") / results["classify"]["wall"]
    by_cpu = max(r["cpu"] for m, r in results.items() if m != "whole") / results["classify"]["cpu"]
    print(f"goal: peak RSS <= 1024 MiB: {worst:.0f} MiB {'met' if worst <= 1024 else 'NOT met'};"
          f" <= 2x classification: wall {ratio:.2f}x {'met' if ratio <= 2 else 'NOT met'},"
          f" CPU {by_cpu:.2f}x {'met' if by_cpu <= 2 else 'NOT met'}")  # fmt: skip
    return 0 if worst <= 1024 and ratio <= 2 and by_cpu <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
