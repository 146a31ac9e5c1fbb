"""Issue 29's done-when, the long version: a collector's ingest while its database's disk fills
and empties over and over, 10,000 records from 4 devices; 0 lost, 0 duplicated, no exit.

    sudo .venv/bin/python bench/disk_full.py [--records N] [--max-inbox N]

The database sits on a 24 MB tmpfs; a filler writes to it until ENOSPC, holds it full 0.4 s,
deletes the filler and waits 0.4 s (`--full-s`, `--empty-s`), again and again
(tests/collector/diskfull.py, which the short test in tests/collector/test_disk_full.py runs
too).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from daozhang.broker.mosquitto import Mosquitto  # noqa: E402

from tests.collector.diskfull import run_while_filling, small_filesystem  # noqa: E402
from tests.collector.test_collect_mqtt import _check_exactly_once  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--max-inbox", default="200000")
    parser.add_argument("--full-s", type=float, default=0.4, help="how long the disk stays full")
    parser.add_argument("--empty-s", type=float, default=0.4, help="... and then empty")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(workdir=Path(tmp) / "mqtt").start()
        try:
            return _run(broker, Path(tmp), args)
        finally:
            broker.stop()


def _run(broker: Mosquitto, tmp: Path, args: argparse.Namespace) -> int:
    records = args.records
    with small_filesystem(tmp / "small", 24) as disk:
        db_url = f"sqlite:///{disk / 'c.db'}"
        outcome = run_while_filling(
            broker.url,
            db_url,
            disk,
            tmp,
            devices=4,
            records=records,
            timeout_s=900,
            extra=("--max-inbox", args.max_inbox),
            full_s=args.full_s,
            empty_s=args.empty_s,
        )
        acked = sum(p.acked for p in outcome.publishers)
        print(f"records acked {acked} of {records} in {outcome.seconds:.1f} s")
        print(f"disk filled {outcome.fills} times; collector exit: {outcome.exit_code}")
        print(*(m for m in outcome.metrics.splitlines() if "store_" in m), sep="\n")
        _check_exactly_once(db_url, outcome.publishers)
        print("stored exactly once: 0 lost, 0 duplicated")
    return 0 if outcome.finished and outcome.exit_code is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
