"""`daozhang device add|list|inspect`: the device key store; `inspect` reads a device over
mpremote (daozhang.flash.device_cli)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from daozhang.collector.keys import add_device, list_devices, new_key, parse_key
from daozhang.errors import UsageError
from daozhang.flash.device_cli import add_parsers as add_inspect_parser
from daozhang.store import open_store


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
    add_inspect_parser(sub)


def run(args: argparse.Namespace) -> int:  # the sub-actions set their own handlers
    raise UsageError("device: choose add, list or inspect")


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
    with open_store(args.db) as store:
        add_device(store, args.dev, key, replace=args.replace, note=args.note)
    if args.generate and key is not None:
        sys.stdout.write(key.hex() + "\n")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with open_store(args.db) as store:
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
