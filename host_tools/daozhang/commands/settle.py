"""`daozhang settle import|list`: bring acquirer settlement files into the store."""

from __future__ import annotations

import argparse
import json
import textwrap
from datetime import datetime
from pathlib import Path

from daozhang.errors import InputError, UsageError
from daozhang.schema import open_database
from daozhang.settle.importer import ImportResult, import_files, list_imports
from daozhang.settle.notices import import_notices
from daozhang.settle.notices import load as load_notices
from daozhang.settle.parse import ENCODINGS, FORMATS
from daozhang.settle.profiles import load as load_profiles
from daozhang.units import BEIJING


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="settle_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import settlement files (each one atomically)")
    imp.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument(
        "--profile", help="the file's layout (settle profiles lists them); default: recognised"
    )
    imp.add_argument("--profiles", type=Path, help="a TOML file of more profiles")
    imp.add_argument("--format", choices=FORMATS, help="old name of --profile generic|unionpay")
    imp.add_argument("--encoding", choices=ENCODINGS, help="default: UTF-8, else GBK")
    imp.add_argument("--acquirer", help="acquirer code (default: header, or the merchants')")
    imp.add_argument(
        "--allow-no-trailer",
        action="store_true",
        help="accept a generic CSV without its #rows,N trailer (a cut file then looks complete)",
    )
    imp.set_defaults(handler=_import)
    prof = sub.add_parser("profiles", help="the file layouts import knows")
    prof.add_argument("--profiles", type=Path, help="a TOML file of more profiles")
    prof.set_defaults(handler=_profiles)
    notices = sub.add_parser("notices", help="acquirers' announced maintenance windows")
    nsub = notices.add_subparsers(dest="notices_command", metavar="ACTION", required=True)
    nimp = nsub.add_parser(
        "import", help="import windows from a CSV or TOML file (acquirer, start, end, what)"
    )
    nimp.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    nimp.add_argument("file", type=Path, metavar="FILE")
    nimp.set_defaults(handler=_notices_import)
    nlst = nsub.add_parser("list", help="the windows known")
    nlst.add_argument("--db", required=True)
    nlst.set_defaults(handler=_notices_list)
    lst = sub.add_parser("list", help="what was imported, for which dates")
    lst.add_argument("--db", required=True)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_list)


def run(args: argparse.Namespace) -> int:
    raise UsageError("settle: choose an action (import, notices, profiles, list)")


def _import(args: argparse.Namespace) -> int:
    failures: list[str] = []
    known = load_profiles(args.profiles)
    with open_database(args.db) as store:
        for path in args.files:
            try:
                results = import_files(
                    store,
                    path,
                    args.format,
                    args.encoding,
                    args.acquirer,
                    require_trailer=not args.allow_no_trailer,
                    profile=args.profile,
                    profiles=known,
                )
            except InputError as exc:
                failures.append(str(exc))
                continue
            for r in results:
                _say(r)
    if failures:
        # Files before and after a bad one are imported; the bad one left nothing behind.
        raise InputError("rejected (nothing stored from it): " + "\ndaozhang: ".join(failures))
    return 0


def _say(r: ImportResult) -> None:
    if r.outcome == "skipped":
        print(f"skipped: {r.name}: {r.notes[0]}")
        return
    dates = r.date_from if r.date_from == r.date_to else f"{r.date_from}..{r.date_to}"
    looks = f" (looks like {r.profile})" if r.recognised else f" ({r.profile})"
    print(
        f"{r.outcome}: {r.name}{looks}: {r.kind}, {r.rows} rows, {dates or '-'}"
        f"{', acquirer ' + r.acquirer if r.acquirer else ''}"
        f"{''.join('; ' + n for n in r.notes)}"
    )


def _notices_import(args: argparse.Namespace) -> int:
    with open_database(args.db) as store:
        added, known = import_notices(store, args.file)
    print(f"imported: {args.file}: {added} new window(s), {known} already known")
    return 0


def _notices_list(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
        found = load_notices(store)
    for n in found:
        print(f"{n.acquirer:8} {_bj(n.start)} .. {_bj(n.end)}  {n.what}")
    if not found:
        print("no maintenance windows imported (settle notices import FILE)")
    return 0


def _bj(t: int) -> str:
    return datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d %H:%M")


def _profiles(args: argparse.Namespace) -> int:
    # Two lines a profile: descriptions mix Chinese (two columns a character) and run long;
    # a terminal is 80 columns.
    for p in load_profiles(args.profiles).values():
        print(f"{p.name:18} {p.origin:9} {', '.join(p.encodings)}")
        for line in textwrap.wrap(p.description, 38 if _wide(p.description) else 76):
            print(f"    {line}")
    return 0


def _wide(text: str) -> bool:
    return any(ord(c) > 0x2E80 for c in text)


def _list(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
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
