"""`daozhang correlate`: every transaction and payout gets a status, a cause and evidence."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from daozhang import words
from daozhang.collector.inbox import pending_records
from daozhang.commands.args import integer, output_file
from daozhang.correlate.engine import analyse, record
from daozhang.errors import DaozhangError, UsageError
from daozhang.schema import open_database
from daozhang.store import Store
from daozhang.units import BEIJING

DEFAULT_LIMIT = 40  # rows of the terminal tables unless --limit/--all (report/table.py)


def parse_time(text: str | None, option: str) -> float | None:
    """`YYYY-MM-DD HH:MM` (or a date) in Beijing time, to unix seconds."""
    if text is None:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=BEIJING).timestamp()
        except ValueError:
            continue
    raise UsageError(f'{option}: expected "YYYY-MM-DD HH:MM" (Beijing time), got {text!r}')


def note_unstored(store: Store, command: str) -> None:
    """Say on stderr how many acked records a collector has not stored yet (its inbox,
    collector/inbox.py): their receipts are missing from what `command` read, which may then
    say `no_receipt` for them, or find nothing."""
    unstored = pending_records(store.query)
    if unstored:
        print(
            f"daozhang {command}: note: {unstored} records acked by the collectors are not"
            " stored yet (their inbox), so this run did not see them: run again once a"
            " collector has stored them",
            file=sys.stderr,
        )


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    parser.add_argument("--as-of", help='"YYYY-MM-DD HH:MM" Beijing time (default: now)')
    parser.add_argument("--policy", type=Path, help="settlement policy TOML (per acquirer)")
    parser.add_argument("--calendar", type=Path, help="working-day override TOML")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument("--merchant", help="only this merchant id")
    parser.add_argument("--device", help="only this device")
    # Output files are checked as the options are read: a missing folder is refused before the
    # correlation runs and records its findings, never after.
    parser.add_argument("--json", type=output_file, metavar="FILE", help="write findings as JSON")
    parser.add_argument("--csv", type=output_file, metavar="FILE", help="write findings as CSV")
    parser.add_argument("--html", type=output_file, metavar="FILE", help="write the HTML report")
    parser.add_argument("--no-record", action="store_true", help="do not store the findings")
    parser.add_argument("--quiet", action="store_true", help="no table on the terminal")
    parser.add_argument(
        "--payouts",
        action="store_true",
        help="one row per payout: gross - fees - refunds - holds = net, against what arrived",
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--limit",
        type=integer(1, 1_000_000),
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"rows in the terminal tables, most missing money first (default {DEFAULT_LIMIT})",
    )
    shown.add_argument("--all", action="store_true", help="every row in the terminal tables")
    parser.add_argument(
        "--lang",
        choices=words.LANGS,
        default="zh",
        help="language of the labels in the terminal tables and the CSV (default zh)",
    )


def run(args: argparse.Namespace) -> int:
    as_of = parse_time(args.as_of, "--as-of")
    with open_database(args.db, create=False) as store:
        result = analyse(store, as_of, args.merchant, args.device, args.policy, args.calendar)
        if not args.no_record:
            record(store, result.as_of, result.findings)
        note_unstored(store, "correlate")
    try:
        if args.json:
            from daozhang.report.export import write_json

            write_json(args.json, result.as_of, result.findings)
        if args.csv:
            from daozhang.report.export import write_csv

            write_csv(args.csv, result.findings, args.lang)
        if args.html:
            from daozhang.report.html import write_html

            write_html(args.html, result.as_of, result.data, result.findings)
    except OSError as exc:  # checked before, but a disk fills and folders go away
        raise DaozhangError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    if args.quiet:
        return 0
    limit = None if args.all else args.limit
    if args.payouts:
        from daozhang.report.payouts import views
        from daozhang.report.table import print_payouts

        print_payouts(result.as_of, views(result.data, result.findings), None, limit, args.lang)
    else:
        from daozhang.report.table import print_report

        print_report(result.as_of, result.findings, None, limit, args.lang)
    return 0
