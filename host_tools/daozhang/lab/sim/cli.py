"""`daozhang sim generate`: a scenario: settlement files, ground truth, and (with --db) load
device data through the collector's ingest path and import the files."""

from __future__ import annotations

import argparse
from datetime import datetime

from daozhang.commands.args import folder, integer
from daozhang.errors import UsageError
from daozhang.units import BEIJING


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=integer(0), default=1)
    parser.add_argument(
        "--cases", type=integer(1, 10_000), default=30, help="cases of every cause (30)"
    )
    parser.add_argument("--out", type=folder, required=True, help="folder for files + truth")
    parser.add_argument("--db", help="also load it into this store")


def run(args: argparse.Namespace) -> int:
    from daozhang.lab.sim.load import load, write_files
    from daozhang.lab.sim.scenario import generate

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"sim generate: --out: cannot make {args.out}: {exc.strerror}") from None
    sc = generate(args.seed, args.cases)
    if args.db:
        from daozhang.schema import open_database

        with open_database(args.db) as store:
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
