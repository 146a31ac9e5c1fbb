"""`daozhang sim generate`: a scenario: settlement files, ground truth, and (with --db) load
device data through the collector's ingest path and import the files."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from daozhang.settle.rows import BEIJING


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=30, help="cases of every cause (30)")
    parser.add_argument("--out", type=Path, required=True, help="folder for files + truth")
    parser.add_argument("--db", help="also load it into this store")


def run(args: argparse.Namespace) -> int:
    from daozhang.sim.load import load, write_files
    from daozhang.sim.scenario import generate

    sc = generate(args.seed, args.cases)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.db:
        from daozhang.store import open_store

        with open_store(args.db) as store:
            counts = load(store, sc, args.out)
        print(f"loaded: {counts['stored']} device records, "
              f"{counts['quarantined']} quarantined")  # fmt: skip
    else:
        write_files(sc, args.out)
    as_of = datetime.fromtimestamp(sc.as_of, BEIJING).strftime("%Y-%m-%d %H:%M")
    print(f"scenario seed {sc.seed}: {len(sc.txns)} transactions, {len(sc.merchants)} "
          f"merchants, from {sc.start}; correlate with --as-of \"{as_of}\"")  # fmt: skip
    print(f"files and ground_truth.json in {args.out}")
    return 0
