"""`daozhang board start|stop|set|status`: virtual boards from the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from daozhang.commands.args import integer, number
from daozhang.errors import DaozhangError, UsageError
from daozhang.lab.board.manager import (
    DEFAULT_HEAP,
    VirtualBoard,
    list_boards,
    parse_flash_size,
)

HELP = "start, stop and control virtual boards"

# Each signal value the board reports, with the range a modem or Wi-Fi chip could: dBm and dB
# (negative), CSQ 0-31 or 99 (unknown), registration status 0-10 (3GPP +CEREG).
_SIGNAL_RANGES = {
    "rssi": (-150, 0),
    "csq": (0, 99),
    "rsrp": (-160, 0),
    "rsrq": (-50, 0),
    "sinr": (-50, 50),
    "reg": (0, 10),
}
_SIGNAL_KEYS = tuple(_SIGNAL_RANGES)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="board_command", metavar="ACTION", required=True)

    start = sub.add_parser("start", help="power on a virtual board (creates the image once)")
    start.add_argument("--image", required=True, type=Path, help="LittleFS2 flash image file")
    start.add_argument("--flash-size", default="4M", help="flash size, e.g. 4M (default)")
    start.add_argument("--name", help="board name (default: the image file's stem)")
    start.add_argument(
        "--heap",
        default=DEFAULT_HEAP,
        help=f"MicroPython heap cap (default {DEFAULT_HEAP}: the agent's code sits on it on the"
        " unix port, besides its 64K of objects)",
    )
    start.add_argument("--autostart", action="store_true", help="run the agent at power-on")
    start.add_argument(
        "--from-flash",
        action="store_true",
        help="run only what is flashed on the board (no development source mounts)",
    )
    start.add_argument(
        "--fs", choices=["lfs2", "fat"], default="lfs2", help="format a blank image (default lfs2)"
    )
    start.set_defaults(handler=_start)

    stop = sub.add_parser("stop", help="stop a virtual board")
    stop.add_argument("name")
    stop.add_argument("--power-cut", action="store_true", help="SIGKILL, as a power cut")
    stop.set_defaults(handler=_stop)

    setc = sub.add_parser("set", help="change the link or signal the board reports")
    setc.add_argument("name")
    setc.add_argument("--link", choices=["up", "down"])
    setc.add_argument("--rat", choices=["wifi", "lte", "gsm"])
    for key, (low, high) in _SIGNAL_RANGES.items():
        setc.add_argument(f"--{key}", type=integer(low, high))
    setc.add_argument(
        "--time",
        help="set the board's clock (its RTC and NTP): ISO date and time (UTC unless it says), "
        "unix seconds, 'host' (the host's clock) or 'none' (no time at all)",
    )
    setc.add_argument(
        "--rate", type=number(0, 1e6), default=1.0, help="board seconds per real second (default 1)"
    )
    setc.set_defaults(handler=_set)

    status = sub.add_parser("status", help="show one board, or all")
    status.add_argument("name", nargs="?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)


def run(args: argparse.Namespace) -> int:  # every action sets its own handler
    raise UsageError("board: choose an action (start, stop, set, status)")


def _start(args: argparse.Namespace) -> int:
    size = parse_flash_size(args.flash_size)
    board = VirtualBoard.named(args.name or args.image.stem)
    tty = board.start(
        args.image,
        size,
        heapsize=args.heap,
        autostart=args.autostart,
        dev=not args.from_flash,
        fs=args.fs,
    )
    print(tty)
    return 0


def _stop(args: argparse.Namespace) -> int:
    board = VirtualBoard.named(args.name)
    if not board.stop(power_cut=args.power_cut):
        raise DaozhangError(f"board {args.name!r} is not running")
    return 0


def _set(args: argparse.Namespace) -> int:
    board = VirtualBoard.named(args.name)
    if not board.root.is_dir():
        raise DaozhangError(f"no virtual board named {args.name!r}")
    control = board.control()
    changes = {k: getattr(args, k) for k in _SIGNAL_KEYS if getattr(args, k) is not None}
    if args.link is None and args.rat is None and not changes and args.time is None:
        raise UsageError("board set: give --link, signal values (--rssi, --csq, ...) and/or --time")
    if args.time is not None:
        _set_clock(board, args.time, args.rate)
        control = board.control()
    if args.link is not None:
        control["link"] = args.link
    if args.rat is not None or changes:
        signal: dict[str, Any] = dict(control.get("signal") or {})
        if args.rat is not None:
            signal["rat"] = args.rat
        signal.update(changes)
        control["signal"] = signal
    board.write_control(control)
    return 0


def _set_clock(board: VirtualBoard, text: str, rate: float) -> None:
    control = board.control()
    if text in ("host", "none"):
        if text == "host":
            control.pop("clock", None)
        else:
            control["clock"] = "none"
        board.write_control(control)
        return
    try:
        t = float(text)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(
                f"--time {text!r}: expected an ISO date and time, unix seconds, host or none"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        t = when.timestamp()
    board.set_clock(t, rate)


def _status(args: argparse.Namespace) -> int:
    boards = [VirtualBoard.named(args.name)] if args.name else list_boards()
    if args.name and not boards[0].root.is_dir():
        raise DaozhangError(f"no virtual board named {args.name!r}")
    rows = [b.status() for b in boards]
    if args.json:
        json.dump(rows if not args.name else rows[0], sys.stdout, indent=2)
        print()
        return 0
    for row in rows:
        state = "running" if row["running"] else "stopped"
        control = row["control"]
        print(
            f"{row['name']:<16} {state:<8} tty={row['tty'] or '-'} "
            f"link={control.get('link', '?')} signal={json.dumps(control.get('signal', {}))}"
        )
    return 0
