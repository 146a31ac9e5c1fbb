"""`daozhang prune --db URL --keep-days N`: age out heartbeats, status events, the uploads log.

Meant for a daily timer beside the collectors (it may run while they write). What it keeps and
why is in `collector/retention.py`; the evidence tables are never touched.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from datetime import datetime

from daozhang.collector.retention import MIN_KEEP_DAYS, NEVER_PRUNED, keep_days_problem, prune
from daozhang.commands.args import number
from daozhang.schema import open_database
from daozhang.units import BEIJING


def _keep_days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    problem = keep_days_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    parser.add_argument(
        "--keep-days",
        type=_keep_days,
        required=True,
        metavar="DAYS",
        help=f"keep rows received in the last N days (at least {MIN_KEEP_DAYS:g})",
    )
    parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    parser.add_argument("--json", action="store_true", help="JSON instead of text")
    parser.add_argument("--now", type=number(0), help="prune as of this unix time (tests)")


def run(args: argparse.Namespace) -> int:
    now = args.now if args.now is not None else time.time()
    with open_database(args.db, create=False) as store:
        result = prune(store, keep_days=args.keep_days, now=now, dry_run=args.dry_run)
    if args.json:
        doc = {**dataclasses.asdict(result), "never_pruned": list(NEVER_PRUNED)}
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    cut = datetime.fromtimestamp(result.cut, BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    verb = "would delete" if result.dry_run else "deleted"
    out.write(f"rows received before {cut} Beijing time ({result.keep_days:g} days kept):\n")
    for t in result.tables:
        line = f"  {t.table:<14} {verb} {t.deleted}"
        if t.kept_latest:
            line += f", kept {t.kept_latest} older (a device's latest)"
        out.write(line + "\n")
    out.write(f"never pruned: {', '.join(NEVER_PRUNED)}\n")
    return 0
