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
from types import ModuleType

from daozhang import __version__
from daozhang.errors import DaozhangError

# (command, module, one-line help). Keep sorted by the order a newcomer meets them.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo", "daozhang.demo", "run the end-to-end demonstration"),
    ("board", "daozhang.board.cli", "start, stop and control virtual boards"),
    ("collect", "daozhang.collector.cli", "store device uploads exactly once and ack them"),
    ("settle", "daozhang.settle.cli", "import acquirer settlement files; list what was imported"),
    ("correlate", "daozhang.correlate.cli", "why money did or did not arrive: findings, reports"),
    ("lookup", "daozhang.correlate.lookup", "one transaction by RRN, or card/amount/time"),
    ("fleet", "daozhang.fleet.cli", "fleet status: one row per device, worst first"),
    ("quarantine", "daozhang.collector.quarantine_cli", "what the collector refused, and why"),
    ("prune", "daozhang.collector.prune_cli", "age out old heartbeats and status events"),
    ("sim", "daozhang.fleet.sim_cli", "scenarios: generate data, run a fleet, check no loss"),
    ("flash", "daozhang.flash.cli", "compile, write, verify and self-test devices over mpremote"),
    ("device", "daozhang.collector.device_cli", "register, list and inspect devices"),
    ("pos", "daozhang.pos.cli", "simulate a POS main board sending receipts to the agent"),
    ("pki", "daozhang.security.pki_cli", "fleet CA, per-device certificates, revocation"),
    ("broker", "daozhang.broker.cli", "run Mosquitto with TLS, per-device identity and ACLs"),
    ("scan-pan", "daozhang.security.scan_cli", "find full card numbers or track data in files"),
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option in the project's one-line error format."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"daozhang: {self.prog}: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="daozhang", description="POS fleet funds-arrival diagnostics")
    parser.add_argument("--version", action="version", version=f"daozhang {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        _attach(module, command_parser)
    return parser


def _attach(module: ModuleType, parser: argparse.ArgumentParser) -> None:
    module.add_arguments(parser)
    if parser.get_default("handler") is None:
        parser.set_defaults(handler=module.run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
