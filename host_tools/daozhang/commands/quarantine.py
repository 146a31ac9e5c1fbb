"""`daozhang quarantine list|show`: what the collector refused, and why.

Every message or record the collector refuses is kept with its reason (DESIGN §2); this is
how the monitoring desk reads those rows without SQL: which devices send what the contract
refuses (a wrong key after a re-flash, a firmware that writes a bad field, a conflicting
resend), and the bytes themselves, PANs already masked.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import datetime
from typing import Any

from daozhang.collector.quarantine_read import (
    Refusal,
    decode_kept,
    get_refusal,
    list_refusals,
    reason_totals,
)
from daozhang.commands.args import whole_number
from daozhang.commands.correlate import parse_time
from daozhang.errors import UsageError
from daozhang.schema import open_database
from daozhang.units import BEIJING

HEX_ROW = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="refused messages and records, newest first")
    listing.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    listing.add_argument("--dev", help="only this device")
    listing.add_argument("--reason", help="only this reason (e.g. mac, record_schema)")
    listing.add_argument("--since", help='"YYYY-MM-DD HH:MM" Beijing time: refused since')
    listing.add_argument("--limit", type=whole_number(1), default=50, help="rows to list (50)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.set_defaults(handler=run_list)
    show = sub.add_parser("show", help="one refused message: reason, bytes, decoded")
    show.add_argument("id", type=whole_number(1), help="the row id from `quarantine list`")
    show.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    show.add_argument("--json", action="store_true", help="JSON instead of text")
    show.set_defaults(handler=run_show)


def run(args: argparse.Namespace) -> int:  # the sub-actions set their own handlers
    raise UsageError("quarantine: choose list or show")


def _print_json(doc: dict[str, Any]) -> None:
    json.dump(doc, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _key(r: Refusal) -> str:
    return "-" if r.seq is None else f"{r.epoch}/{r.seq}"


def run_list(args: argparse.Namespace) -> int:
    since = parse_time(args.since, "--since")
    with open_database(args.db, create=False) as store:
        rows = list_refusals(store, dev=args.dev, reason=args.reason, since=since, limit=args.limit)
        totals = reason_totals(store, dev=args.dev, reason=args.reason, since=since)
    if args.json:
        _print_json(
            {
                "refusals": [dataclasses.asdict(r) for r in rows],
                "totals": [dataclasses.asdict(t) for t in totals],
            }
        )
        return 0
    out = sys.stdout
    out.write(
        f"{'id':>6} {'last refused (Beijing)':<22} {'dev':<16} {'reason':<16}"
        f" {'epoch/seq':<14} {'times':>5} {'bytes':>6}  detail\n"
    )
    for r in rows:
        out.write(
            f"{r.id:>6} {_when(r.last_at):<22} {r.dev or '?':<16} {r.reason:<16}"
            f" {_key(r):<14} {r.repeats:>5} {r.size:>6}  {r.detail}\n"
        )
    shown = sum(t.rows for t in totals)
    if shown > len(rows):
        out.write(f"... {shown - len(rows)} more rows (--limit)\n")
    if not totals:
        out.write("nothing refused\n")
    for t in totals:
        out.write(f"{t.reason}: {t.rows} refused, {t.refusals} times with repeats\n")
    return 0


def hex_dump(raw: bytes) -> list[str]:
    lines = []
    for offset in range(0, len(raw), HEX_ROW):
        chunk = raw[offset : offset + HEX_ROW]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:06x}  {chunk.hex(' '):<{HEX_ROW * 3 - 1}}  {text}")
    return lines


def run_show(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
        refusal, raw = get_refusal(store, args.id)
    decoded = decode_kept(raw)
    if args.json:
        _print_json(
            {
                **dataclasses.asdict(refusal),
                "raw_hex": raw.hex(),
                "decoded": decoded.value,
                "trailing_bytes": decoded.trailing,
                "decode_error": decoded.error,
            }
        )
        return 0
    out = sys.stdout
    r = refusal
    out.write(f"quarantine row {r.id}\n")
    out.write(f"  reason      {r.reason}: {r.detail}\n")
    out.write(f"  device      {r.dev or '? (not known from the message)'}\n")
    out.write(f"  topic       {r.topic}\n")
    if r.seq is not None:
        out.write(f"  record      epoch {r.epoch}, seq {r.seq}\n")
    when = _when(r.received_at)
    if r.repeats > 1:
        when = f"{when} first, {_when(r.last_at)} last ({r.repeats} times)"
    out.write(f"  refused     {when}{f' by {r.collector}' if r.collector else ''}\n")
    out.write(f"  bytes kept  {r.size} (full card numbers masked before they were stored)\n")
    if decoded.error is not None:
        out.write(f"  as CBOR     not decodable: {decoded.error}\n")
    else:
        note = decoded.trailer_note()
        out.write(f"  as CBOR{f'     ({note})' if note else ''}\n")
        for line in json.dumps(decoded.value, indent=1, ensure_ascii=False).splitlines():
            out.write(f"    {line}\n")
    out.write("  bytes\n")
    for line in hex_dump(raw):
        out.write(f"    {line}\n")
    return 0
