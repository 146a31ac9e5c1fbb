"""`daozhang device add|list|move-terminal|inspect|cmd`: the device key store and which device
owns a terminal's receipts; `inspect` reads a device over mpremote (daozhang.commands.device_port);
`cmd` sends it a signed command over the broker (daozhang.commands.device_cmd)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from daozhang.collector.keys import add_device, list_devices, move_terminal, new_key, parse_key
from daozhang.commands.device_cmd import add_parsers as add_cmd_parser
from daozhang.commands.device_port import add_parsers as add_inspect_parser
from daozhang.errors import UsageError
from daozhang.schema import open_database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="register a device and its HMAC key")
    add.add_argument("dev", help="terminal serial, [A-Za-z0-9_-]{4,32}")
    add.add_argument("--db", required=True, help="sqlite:///FILE or postgresql://...")
    keys = add.add_mutually_exclusive_group()
    keys.add_argument("--key", help="the key in hex (16-64 bytes)")
    keys.add_argument("--key-file", help="a file holding the key in hex")
    keys.add_argument(
        "--generate", action="store_true", help="make a 32-byte key and print it in hex"
    )
    add.add_argument("--replace", action="store_true", help="replace an existing key")
    add.add_argument("--note", help="free text (site, owner)")
    add.set_defaults(handler=run_add)
    show = sub.add_parser("list", help="list devices (never their keys)")
    show.add_argument("--db", required=True)
    show.add_argument("--json", action="store_true", help="JSON instead of a table")
    show.set_defaults(handler=run_list)
    move = sub.add_parser(
        "move-terminal",
        help="give a terminal's receipts to another device (the history stays)",
        description="A terminal's receipts belong to the device that first reported them; "
        "another device's receipt with the same key is quarantined as `conflict`. After a "
        "co-processor is replaced, move the terminal to the new device.",
    )
    move.add_argument("mid", help="merchant id (15)")
    move.add_argument("tid", help="terminal id (8)")
    move.add_argument("--to", required=True, metavar="DEV", help="the device that serves it now")
    move.add_argument("--db", required=True)
    move.add_argument("--note", help="free text (ticket, reason)")
    move.set_defaults(handler=run_move)
    add_inspect_parser(sub)
    add_cmd_parser(sub)


def run(args: argparse.Namespace) -> int:  # the sub-actions set their own handlers
    raise UsageError("device: choose add, list, move-terminal, inspect or cmd")


def run_add(args: argparse.Namespace) -> int:
    key = None
    if args.key:
        key = parse_key(args.key)
    elif args.key_file:
        try:
            with open(args.key_file, encoding="ascii") as f:
                key = parse_key(f.read())
        except OSError as exc:
            raise UsageError(f"cannot read key file {args.key_file}: {exc}") from exc
    elif args.generate:
        key = new_key()
    with open_database(args.db) as store:
        add_device(store, args.dev, key, replace=args.replace, note=args.note)
    if args.generate and key is not None:
        sys.stdout.write(key.hex() + "\n")
    return 0


def run_move(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
        before = move_terminal(store, args.mid, args.tid, args.to, note=args.note)
    was = f" (served by {before} before)" if before else ""
    sys.stdout.write(f"terminal {args.mid}/{args.tid} now belongs to {args.to}{was}\n")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with open_database(args.db, create=False) as store:
        rows = list_devices(store)
    if args.json:
        json.dump([dataclasses.asdict(r) for r in rows], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    sys.stdout.write(f"{'dev':<20} {'key':<4} {'online':<7} {'mid':<16} {'tid':<9} note\n")
    for r in rows:
        sys.stdout.write(
            f"{r.dev:<20} {'yes' if r.has_key else 'no':<4} {'yes' if r.online else 'no':<7}"
            f" {r.mid or '-':<16} {r.tid or '-':<9} {r.note or ''}\n"
        )
    return 0
