"""`daozhang settle import|list`: bring acquirer settlement files into the store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from daozhang.errors import InputError, UsageError
from daozhang.settle.importer import import_file, list_imports
from daozhang.settle.parse import ENCODINGS, FORMATS
from daozhang.store import open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="settle_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import settlement files (each one atomically)")
    imp.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--format", choices=FORMATS, help="default: recognised from the content")
    imp.add_argument("--encoding", choices=ENCODINGS, help="default: UTF-8, else GBK")
    imp.add_argument("--acquirer", help="acquirer code (default: header, or the merchants')")
    imp.set_defaults(handler=_import)
    lst = sub.add_parser("list", help="what was imported, for which dates")
    lst.add_argument("--db", required=True)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_list)


def run(args: argparse.Namespace) -> int:
    raise UsageError("settle: choose an action (import, list)")


def _import(args: argparse.Namespace) -> int:
    failures: list[str] = []
    with open_store(args.db) as store:
        for path in args.files:
            try:
                r = import_file(store, path, args.format, args.encoding, args.acquirer)
            except InputError as exc:
                failures.append(str(exc))
                continue
            dates = r.date_from if r.date_from == r.date_to else f"{r.date_from}..{r.date_to}"
            print(
                f"{r.outcome}: {r.name}: {r.kind}, {r.rows} rows, {dates or '-'}"
                f"{', acquirer ' + r.acquirer if r.acquirer else ''}"
            )
    if failures:
        # Files before and after a bad one are imported; the bad one left nothing behind.
        raise InputError("rejected (nothing stored from it): " + "\ndaozhang: ".join(failures))
    return 0


def _list(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
        files = list_imports(store)
    if args.json:
        print(json.dumps(files, ensure_ascii=False, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="imported settlement files")
    for col in ("dates", "kind", "acquirer", "rows", "format", "encoding", "file"):
        table.add_column(col)
    for f in files:
        dates = (
            f["date_from"]
            if f["date_from"] == f["date_to"]
            else (f"{f['date_from']}..{f['date_to']}")
        )
        table.add_row(
            str(dates or "-"),
            f["kind"],
            f["acquirer"] or "(any)",
            str(f["rows"]),
            f["format"],
            f["encoding"],
            f["name"],
        )
    Console().print(table)
    return 0
