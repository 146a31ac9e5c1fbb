"""`daozhang board start|stop|set|status`: virtual boards from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daozhang.board.manager import VirtualBoard, list_boards, parse_flash_size
from daozhang.errors import DaozhangError, UsageError

_SIGNAL_KEYS = ("rssi", "csq", "rsrp", "rsrq", "sinr", "reg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="board_command", metavar="ACTION", required=True)

    start = sub.add_parser("start", help="power on a virtual board (creates the image once)")
    start.add_argument("--image", required=True, type=Path, help="LittleFS2 flash image file")
    start.add_argument("--flash-size", default="4M", help="flash size, e.g. 4M (default)")
    start.add_argument("--name", help="board name (default: the image file's stem)")
    start.add_argument("--heap", default="64K", help="MicroPython heap cap (default 64K)")
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
    for key in _SIGNAL_KEYS:
        setc.add_argument(f"--{key}", type=int)
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
    if args.link is None and args.rat is None and not changes:
        raise UsageError("board set: give --link and/or signal values (--rssi, --csq, ...)")
    if args.link is not None:
        control["link"] = args.link
    signal: dict[str, Any] = dict(control.get("signal") or {})
    if args.rat is not None:
        signal["rat"] = args.rat
    signal.update(changes)
    control["signal"] = signal
    board.write_control(control)
    return 0


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
