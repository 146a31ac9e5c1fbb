"""`daozhang device inspect`: what a device holds, read over mpremote.

The raw REPL that mpremote uses interrupts the running agent (Ctrl-C), so inspect says so,
only reads (mounting the journal does what every boot does), and restarts the agent when done.
`daozhang device` is the collector's command (add, list); it adds `inspect` by `add_parsers`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from daozhang.commands.args import whole_number
from daozhang.flash.link import DeviceError, Port
from daozhang.flash.reboot import restart_agent


def add_parsers(sub: Any) -> None:
    inspect = sub.add_parser("inspect", help="journal, config, diag events, link and signal")
    inspect.add_argument("--port", required=True, help="serial port of the device")
    inspect.add_argument(
        "--recent", type=whole_number(0, 1000), default=10, help="diag events to show (10)"
    )
    inspect.add_argument("--json", action="store_true", help="print the raw report as JSON")
    inspect.add_argument(
        "--no-restart", action="store_true", help="leave the agent stopped afterwards"
    )
    inspect.set_defaults(handler=run_inspect)
    flashed = sub.add_parser("flashed", help="the flash registry: which device is on which board")
    flashed.add_argument("--db", help="database (default: $DAOZHANG_DB or the local registry)")
    flashed.add_argument("--json", action="store_true", help="JSON instead of a table")
    flashed.set_defaults(handler=run_flashed)


def run_inspect(args: argparse.Namespace) -> int:
    port = Port(args.port)
    port.check_present()
    err = Console(stderr=True)
    err.print(
        f"{args.port}: the REPL interrupts the agent while inspecting; the journal is only "
        "read, and the agent is restarted when done."
    )
    try:
        report = port.exec_json(
            f"import devinfo\ndevinfo.main({int(args.recent)})", "DZ-INSPECT", timeout_s=120
        )
    except DeviceError as exc:
        if "devinfo" in str(exc):
            raise DeviceError(
                f"{args.port}: no daozhang firmware on this device (flash it first)"
            ) from exc
        raise
    finally:
        if not args.no_restart:
            how = restart_agent(port)
            err.print(f"{args.port}: agent restarted ({how})")
    if args.json:
        json.dump(report, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    _show(report, args.port)
    return 0


def run_flashed(args: argparse.Namespace) -> int:
    from daozhang.commands.flash import default_db_url
    from daozhang.flash.registry import flashed_devices
    from daozhang.schema import open_database

    with open_database(args.db or default_db_url(), create=False) as store:
        rows = flashed_devices(store)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
        return 0
    table = Table(title="flashed devices")
    for column in ("dev", "board", "port", "firmware", ".mpy", "flashed (UTC)", "by", "result"):
        table.add_column(column)
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["flashed_at"]))
        table.add_row(
            row["dev"],
            row["board"],
            row["port"],
            f"{row['fw_version']} {row['fw_hash'][:12]}",
            row["mpy"],
            when,
            row["operator"],
            row["result"],
        )
    Console(width=max(120, Console().width)).print(table)
    return 0


def _kv_table(title: str, data: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in data.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(str(key), text)
    return table


def _show(report: dict[str, Any], port: str) -> None:
    out = Console(width=max(100, Console().width))
    fw = report.get("fw") or {}
    out.print(
        f"[bold]{port}[/bold] firmware {fw.get('version', '?')} "
        f"({str(fw.get('hash', '?'))[:12]}, board {fw.get('board', '?')}, .mpy v{fw.get('mpy')})"
    )
    out.print(_kv_table("updates (/ota): running, staged, last result", report.get("ota") or {}))
    out.print(_kv_table("journal", report.get("journal") or {}))
    out.print(_kv_table("config (secrets hidden)", report.get("config") or {}))
    out.print(_kv_table("credential slots (/secrets)", report.get("secrets") or {}))
    out.print(_kv_table("link and signal", report.get("board") or {}))
    diag = Table(title="recent diag events (unacked, still on flash)")
    for column in ("seq", "time (UTC)", "boot", "up ms", "event"):
        diag.add_column(column)
    for rec in report.get("diag") or []:
        t = rec.get("t") or 0
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if t else "unknown"
        body = rec.get("b") or {}
        diag.add_row(
            str(rec.get("seq")),
            when,
            str(rec.get("boot")),
            str(rec.get("up")),
            json.dumps(body, ensure_ascii=False),
        )
    out.print(diag)
