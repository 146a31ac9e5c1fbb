"""The `daozhang` command line: one table of commands, one error convention.

Each command lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`.
A `DaozhangError` becomes `daozhang: message` on stderr with exit status 2; a user's mistake
never shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from daozhang import __version__
from daozhang.commands.args import out_of_range
from daozhang.errors import DaozhangError

# (command, one-line help); each is the module daozhang.commands.<command> (`-` as `_`).
# Keep sorted by the order a newcomer meets them.
COMMANDS: list[tuple[str, str]] = [
    ("collect", "store device uploads exactly once and ack them"),
    ("settle", "import acquirer settlement files; list what was imported"),
    ("correlate", "why money did or did not arrive: findings, reports"),
    ("lookup", "one transaction by RRN, or card/amount/time"),
    ("fleet", "fleet status: one row per device, worst first"),
    ("alerts", "fleet and money alerts to WeCom, DingTalk, Feishu or JSON webhooks"),
    ("console", "the fleet console: a web page for fleet and support staff, and its users"),
    ("quarantine", "what the collector refused, and why"),
    ("prune", "age out old heartbeats and status events"),
    ("flash", "compile, write, verify and self-test devices over mpremote"),
    ("device", "register, list and inspect devices; send them signed commands"),
    ("ota", "over-the-air update bundles"),
    ("pki", "fleet CA, per-device certificates, revocation"),
    ("broker", "run Mosquitto with TLS, per-device identity and ACLs"),
    ("scan-pan", "find full card numbers or track data in files"),
]

# Commands of other packages (the test lab's demo, virtual boards, POS and fleet simulators)
# register under this entry point group, naming a module with `HELP`, `add_arguments` and
# `run`: the product lists them without importing them by name.
COMMAND_ENTRY_POINTS = "daozhang.commands"


def all_commands(only: str | None = None) -> list[tuple[str, str, str]]:
    """The product's commands, then the registered ones, each with its module's help (with
    `only`, the registered ones other than it are not imported and have no help)."""
    registered = [
        (entry.name, entry.value,
         importlib.import_module(entry.value).HELP if only in (None, entry.name) else "")
        for entry in sorted(entry_points(group=COMMAND_ENTRY_POINTS), key=lambda e: e.name)
    ]  # fmt: skip
    product = [
        (name, f"daozhang.commands.{name.replace('-', '_')}", help_text)
        for name, help_text in COMMANDS
    ]
    return [*product, *registered]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in the project's one-line error format, and holds
    every option of every command to one rule (`commands/args.py`: no integer past 2^63, no
    float that is not finite), whatever type its module gave it."""

    def _get_value(self, action: argparse.Action, arg_string: str) -> Any:
        value = super()._get_value(action, arg_string)
        problem = out_of_range(value)
        if problem is not None:
            raise argparse.ArgumentError(action, problem)
        return value

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        # `daozhang: collect: argument ...`, not `daozhang: daozhang collect: ...`.
        where = self.prog.removeprefix("daozhang").strip()
        sys.stderr.write(f"daozhang: {where}: {message}\n" if where else f"daozhang: {message}\n")
        raise SystemExit(2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; with `only` (the command being run), the others are names
    alone, their modules not imported: a command starts without importing all the others
    (the console's, the lab's), half a second of every run."""
    parser = _Parser(prog="daozhang", description="POS fleet funds-arrival diagnostics")
    parser.add_argument("--version", action="version", version=f"daozhang {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module_name, help_text in all_commands(only):
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only in (None, name):
            _attach(importlib.import_module(module_name), command_parser)
    return parser


def _attach(module: ModuleType, parser: argparse.ArgumentParser) -> None:
    module.add_arguments(parser)
    if parser.get_default("handler") is None:
        parser.set_defaults(handler=module.run)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words and not words[0].startswith("-") else None)
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except DaozhangError as exc:
        sys.stderr.write(f"daozhang: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("daozhang: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`daozhang fleet status | head`): stop quietly, as Unix tools
        # do. stdout goes to /dev/null so that the interpreter's last flush cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return status


if __name__ == "__main__":
    raise SystemExit(main())
