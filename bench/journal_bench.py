"""Journal benchmark: the cost of durability on a LittleFS2 flash image, in one run.

Under the real MicroPython (unix port) on a file-backed 1 MiB LittleFS2 image that counts
programs, bytes and erases like a flash chip:
  - durable receipts (each synced before its ACK, collector acks every 50) against the same
    frames appended to one file and synced once at the end (the baseline, no durability):
    appends per second, flash bytes written and block erases per receipt, and the ratios;
  - diagnostics of a simulated hour (probe + signal every minute, a link flap every 20 min)
    committed every 5 minutes as DESIGN §1.1 says, against syncing each record: erases per
    simulated hour.

Run: .venv/bin/python bench/journal_bench.py [--receipts N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "host_tools"))

from daozhang.lab.mp.run import run_micropython  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_micropython(
            [str(REPO / "bench" / "mp_journal_bench.py"), tmp, str(args.receipts)],
            heapsize="256K",
            timeout=1200,
        )
    out = result.stdout.decode()
    if result.returncode != 0:
        print(out, result.stderr.decode(), file=sys.stderr)
        return 1
    rows = {
        r["name"]: r
        for r in (json.loads(line) for line in out.splitlines() if line.startswith("{"))
    }
    d, b = rows["durable"], rows["buffered"]
    n = d["records"]
    print(
        f"receipts: {n}, frame {b['frame_bytes']} bytes, 1 MiB LittleFS2 image, "
        "MicroPython unix port"
    )
    print(f"{'':28} {'durable':>12} {'no durability':>14} {'ratio':>8}")
    print(
        f"{'appends per second':28} {d['per_s']:>12.0f} {b['per_s']:>14.0f} "
        f"{d['per_s'] / b['per_s']:>8.3f}"
    )
    print(
        f"{'flash bytes per receipt':28} {d['bytes_written'] / n:>12.0f} "
        f"{b['bytes_written'] / n:>14.0f} {d['bytes_written'] / b['bytes_written']:>8.1f}"
    )
    print(
        f"{'erases per receipt':28} {d['erases'] / n:>12.2f} {b['erases'] / n:>14.3f} "
        f"{d['erases'] / max(1, b['erases']):>8.1f}"
    )
    print(
        f"{'write amplification':28} {d['bytes_written'] / (n * b['frame_bytes']):>12.1f} "
        f"{b['bytes_written'] / (n * b['frame_bytes']):>14.1f}"
    )
    c, s = rows["diag_commit_300s"], rows["diag_commit_0s"]
    hours = c["hours"]
    print(
        f"diagnostics, {c['records'] / hours:.0f} records per simulated hour: "
        f"{c['erases'] / hours:.1f} erases/hour committed every 5 min, "
        f"{s['erases'] / hours:.1f} erases/hour synced each "
        f"(ratio {s['erases'] / max(1, c['erases']):.1f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
