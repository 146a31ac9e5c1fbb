"""`daozhang flash`: turn MicroPython boards into provisioned daozhang agents, many at once."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from daozhang.commands.args import number, whole_number
from daozhang.errors import UsageError
from daozhang.flash.deploy import Flasher, FlashOptions, FlashResult
from daozhang.flash.layout import split_broker
from daozhang.flash.settings import TUNABLE, parse_settings
from daozhang.paths import board_dir, state_dir
from daozhang.schema import open_database
from daozhang.store import Store

_DEV = re.compile(r"^[A-Za-z0-9_-]{4,32}$")
_STYLE = {"pass": "green", "fail": "red", "n/a": "yellow", "incomplete": "yellow", "skip": "dim"}


def default_db_url() -> str:
    return os.environ.get("DAOZHANG_DB") or f"sqlite:///{state_dir() / 'daozhang.db'}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="serial port(s), comma-separated")
    parser.add_argument("--board", required=True, help="board folder under boards/")
    parser.add_argument(
        "--device-id", required=True, help="device id(s), one per port, comma-separated"
    )
    parser.add_argument("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    parser.add_argument(
        "--db",
        help="the collector's database: registers the HMAC key there and waits for the "
        "first heartbeat (default: $DAOZHANG_DB or a local registry, no heartbeat check)",
    )
    parser.add_argument("--operator", help="who flashes (default: the login name)")
    parser.add_argument("--dry-run", action="store_true", help="show what would change")
    parser.add_argument("--ca", type=Path, help="CA certificate (PEM) for /secrets/ca.pem")
    parser.add_argument("--client-cert", type=Path, help="client certificate for TLS")
    parser.add_argument("--client-key", type=Path, help="client private key for TLS")
    parser.add_argument(
        "--mpy",
        type=whole_number(0, 255),
        help="compile for this sys.implementation._mpy instead of the device's (experts)",
    )
    parser.add_argument(
        "--heartbeat-wait", type=number(0), default=90.0, help="seconds to wait for the heartbeat"
    )
    parser.add_argument(
        "--jobs", type=whole_number(1), default=8, help="ports flashed at once (default 8)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"an agent setting for /config.json, repeatable; kept by later flashes "
        f"(tunable: {', '.join(TUNABLE)})",
    )


def _split(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UsageError(f"{what}: give at least one")
    if len(set(items)) != len(items):
        raise UsageError(f"{what} {text!r}: the same value twice")
    return items


def _options(args: argparse.Namespace) -> FlashOptions:
    board_dir(args.board)  # unknown board: one clear line listing the known ones
    if args.broker:
        split_broker(args.broker)
    settings = parse_settings(args.set)
    tls: dict[str, Path] = {}
    for slot, path in (("ca", args.ca), ("cert", args.client_cert), ("key", args.client_key)):
        if path is not None:
            if not path.is_file():
                raise UsageError(f"{path}: no such file")
            tls[slot] = path
    return FlashOptions(
        board=args.board,
        broker=args.broker,
        operator=args.operator or getpass.getuser(),
        dry_run=args.dry_run,
        tls=tls,
        mpy_override=args.mpy,
        heartbeat_wait_s=args.heartbeat_wait,
        check_heartbeat=args.db is not None,
        settings=settings,
    )


def run(args: argparse.Namespace) -> int:
    ports = _split(args.port, "--port")
    devs = _split(args.device_id, "--device-id")
    if len(ports) != len(devs):
        raise UsageError(f"{len(ports)} port(s) but {len(devs)} device id(s): give one id per port")
    for dev in devs:
        if not _DEV.match(dev):
            raise UsageError(f"device id {dev!r}: use 4-32 letters, digits, '_' or '-'")
    options = _options(args)
    db_url = args.db or default_db_url()
    if not options.dry_run:
        if db_url.startswith("sqlite:///"):
            folder = Path(db_url[len("sqlite:///") :]).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"--db {db_url}: cannot create {folder}: {exc.strerror}") from exc
        open_database(db_url).close()  # migrate once, before the threads open their own

    def store() -> Store:
        return open_database(db_url, migrate=False)

    # A dry run reads the key store if there is one, and never creates a database.
    missing = db_url.startswith("sqlite:///") and not Path(db_url[len("sqlite:///") :]).exists()
    flasher = Flasher(options, None if options.dry_run and missing else store)
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bars:
        pairs = list(zip(ports, devs, strict=True))
        tasks = {p: bars.add_task(f"{p} {d}: waiting", total=1.0) for p, d in pairs}

        def one(port: str, dev: str) -> FlashResult:
            def progress(step: str, done: float) -> None:
                bars.update(tasks[port], description=f"{port} {dev}: {step}", completed=done)

            result = flasher.flash(port, dev, progress)
            bars.update(tasks[port], description=f"{port} {dev}: {result.verdict}", completed=1.0)
            return result

        with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, len(ports)))) as pool:
            results = list(pool.map(one, ports, devs))
    _print_results(results, options.dry_run)
    for r in results:
        if r.error is not None:
            sys.stderr.write(f"daozhang: {r.error}\n")
        for name, status, detail in r.selftest:
            if status in ("fail", "n/a"):
                line = f"{r.port}: self-test {name} {status.upper()}: {detail}"
                sys.stderr.write(f"daozhang: {line}\n")
    if options.dry_run:
        return 0 if all(r.error is None for r in results) else 1
    return 0 if all(r.verdict == "pass" for r in results) else 1


def _print_results(results: list[FlashResult], dry_run: bool) -> None:
    out = Console(width=max(120, Console().width))
    for r in results:
        title = f"{r.port} · {r.dev}"
        if r.error is not None:
            out.print(f"[bold]{title}[/bold]: [red]FAIL[/red] {r.error}")
            continue
        if dry_run:
            plan = f"{len(r.written)} to write, {len(r.removed)} to remove, {r.unchanged} unchanged"
            out.print(f"[bold]{title}[/bold] (dry run, .mpy v{r.mpy}): {plan}")
            for path in r.written:
                out.print(f"  write  {path}")
            for path in r.removed:
                out.print(f"  remove {path}")
            continue
        changes = f"{len(r.written)} written, {len(r.removed)} removed, {r.unchanged} unchanged"
        table = Table(title=f"{title}: {r.verdict.upper()} ({changes}; .mpy v{r.mpy})")
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail")
        for name, status, detail in r.selftest:
            style = _STYLE.get(status, "")
            table.add_row(name, f"[{style}]{status.upper()}[/{style}]", detail)
        out.print(table)
