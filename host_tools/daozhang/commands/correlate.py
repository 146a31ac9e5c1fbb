"""`daozhang correlate`: every transaction and payout gets a status, a cause and evidence."""

from __future__ import annotations

import argparse
import gc
import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Protocol

from daozhang import words
from daozhang.collector.inbox import pending_records
from daozhang.commands.args import integer, output_file
from daozhang.correlate.engine import Recorder, analyse_chunks
from daozhang.correlate.render_fast import Renderer
from daozhang.correlate.stream import Chunk
from daozhang.errors import DaozhangError, UsageError
from daozhang.report.export import CsvFile, JsonFile
from daozhang.report.payout_files import PayoutCsvFile, PayoutJsonFile
from daozhang.report.payouts import PayoutTally
from daozhang.report.table import Tally, print_payouts, print_tally
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
    parser.add_argument(
        "--payouts-json",
        type=output_file,
        metavar="FILE",
        help="write the payout view as JSON (one payout a line, its transactions under it)",
    )
    parser.add_argument(
        "--payouts-csv",
        type=output_file,
        metavar="FILE",
        help="write the payout view as CSV (one row per payout, amounts in yuan)",
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
    """One pass over the store a merchant range at a time (correlate/stream.py): each chunk's
    findings go to every output at once, and only what the outputs keep stays in memory."""
    # stream.py keeps the cyclic collector off while the chunks come; it stays off until the
    # reports are closed too: the HTML page's timelines and payouts are made from hundreds of
    # thousands of kept findings, which hold no cycles and would only be rescanned.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(args)
    finally:
        if was_enabled:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    as_of_arg = parse_time(args.as_of, "--as-of")
    limit = None if args.all else args.limit
    with open_database(args.db, create=False) as store, ExitStack() as outputs:
        as_of, found = analyse_chunks(
            store, as_of_arg, args.merchant, args.device, args.policy, args.calendar
        )
        # The findings are written through a connection of their own, a batch a transaction,
        # while this one reads its one view of the store.
        recorder = None
        if not args.no_record:
            writer = outputs.enter_context(open_database(args.db, create=False))
            recorder = Recorder(writer, as_of)
        renderer = Renderer()  # one for every output: each finding's text made once
        try:
            files = _open_files(args, as_of, renderer, recorder is not None)
            for out in files:
                outputs.callback(out.close)
            tally = None if args.quiet or args.payouts else Tally(limit)
            payouts = PayoutTally(limit) if args.payouts and not args.quiet else None
            for chunk in found:
                for out in files:
                    out.add_chunk(chunk)
                if recorder is not None:
                    recorder.add(chunk.findings, chunk.json_lines(renderer))
                if tally is not None:
                    tally.add(chunk.findings)
                if payouts is not None:
                    payouts.add(chunk.data, chunk.findings)
                del chunk
            if recorder is not None:
                recorder.close()
        except OSError as exc:  # checked before, but a disk fills and folders go away
            raise DaozhangError(f"cannot write {exc.filename}: {exc.strerror}") from exc
        note_unstored(store, "correlate")
    if tally is not None:
        print_tally(as_of, tally, None, args.lang)
    if payouts is not None:
        print_payouts(as_of, payouts.result(), None, limit, args.lang, (payouts.n, payouts.missing))
    return 0


class _Output(Protocol):
    def add_chunk(self, chunk: Chunk) -> None: ...

    def close(self) -> None: ...


class _Json:
    def __init__(self, out: JsonFile, renderer: Renderer, recording: bool) -> None:
        self.out = out
        self.renderer = renderer
        self.recording = recording  # the JSON lines are made once for both, and kept

    def add_chunk(self, chunk: Chunk) -> None:
        if self.recording:
            self.out.add(chunk.findings, lines=chunk.json_lines(self.renderer))
        else:
            self.out.add(chunk.findings, chunk.explained(self.renderer))

    def close(self) -> None:
        self.out.close()


class _Csv:
    def __init__(self, out: CsvFile, renderer: Renderer) -> None:
        self.out = out
        self.renderer = renderer

    def add_chunk(self, chunk: Chunk) -> None:
        self.out.add(chunk.findings, chunk.explained(self.renderer))

    def close(self) -> None:
        self.out.close()


def _open_files(
    args: argparse.Namespace, as_of: int, renderer: Renderer, recording: bool
) -> list[_Output]:
    files: list[_Output] = []
    if args.json:
        files.append(_Json(JsonFile(args.json, as_of, renderer), renderer, recording))
    if args.csv:
        files.append(_Csv(CsvFile(args.csv, args.lang, renderer), renderer))
    if args.html:
        from daozhang.report.html import HtmlReport

        files.append(HtmlReport(args.html, as_of))
    if args.payouts_json:
        files.append(PayoutJsonFile(args.payouts_json, as_of))
    if args.payouts_csv:
        files.append(PayoutCsvFile(args.payouts_csv, args.lang))
    return files
