"""`daozhang fleet status --db URL [--json]`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from daozhang.commands.args import number
from daozhang.errors import UsageError
from daozhang.fleet.status import fleet_status, signal_text
from daozhang.schema import open_database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = sub.add_parser("status", help="one row per device, worst first")
    status.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    status.add_argument("--json", action="store_true", help="JSON instead of a table")
    status.add_argument(
        "--silent-after",
        type=number(0, above=True),
        default=900,
        help="seconds without a message = silent",
    )
    status.add_argument("--now", type=number(0), help="evaluate as of this unix time (tests)")
    status.set_defaults(handler=run_status)


def run(args: argparse.Namespace) -> int:
    raise UsageError("fleet: choose status")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def run_status(args: argparse.Namespace) -> int:
    now = args.now if args.now is not None else time.time()
    with open_database(args.db, create=False) as store:
        rows = fleet_status(store, now, silent_after_s=args.silent_after)
    if args.json:
        json.dump(
            {"now": now, "devices": [dataclasses.asdict(r) for r in rows]},
            sys.stdout,
            indent=1,
            ensure_ascii=False,
        )
        sys.stdout.write("\n")
        return 0
    header = (
        f"{'dev':<16} {'online':<7} {'seen':>6} {'backlog':>8} {'oldest':>7} "
        f"{'signal':<22} {'recon':>5} {'ok/fail':>9}  problem"
    )
    sys.stdout.write(header + "\n")
    for r in rows:
        sys.stdout.write(
            f"{r.dev:<16} {'yes' if r.online else 'no':<7} {_age(r.silent_s):>6}"
            f" {'-' if r.backlog is None else r.backlog:>8}"
            f" {'-' if r.oldest_s is None else _age(r.oldest_s):>7}"
            f" {signal_text(r.signal):<22} {r.reconnects:>5}"
            f" {f'{r.sync_ok}/{r.sync_fail}':>9}  {r.problem}\n"
        )
    return 0
