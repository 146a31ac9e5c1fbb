"""`daozhang demo`: what the project can show end to end today.

Today (foundation): power on a virtual board on a fresh LittleFS image, read its state over
the real mpremote, flip its link through the control channel, power-cut it, and show that a
file written to its flash survived. The fleet demo (20 boards, broker, collector, settlement
files, HTML report) replaces this once the fleet simulation lands.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from daozhang.board.manager import VirtualBoard
from daozhang.errors import DaozhangError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", action="store_true", help="keep the demo folder afterwards")


def _mpremote(tty: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", str(tty), "resume", *args],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise DaozhangError(f"mpremote failed: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode()


def _describe(tty: Path) -> dict[str, Any]:
    out = _mpremote(tty, "exec", "import board; print(board.Board().describe())")
    state: dict[str, Any] = ast.literal_eval(out.strip())
    return state


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="daozhang-demo-"))
    os.environ["DAOZHANG_STATE"] = str(workdir / "state")
    image = workdir / "demo.img"
    board = VirtualBoard.named("demo")
    try:
        print(f"[1/5] powering on a virtual board on {image} (4 MiB LittleFS2 flash)")
        tty = board.start(image, 4 * 1024 * 1024)
        print(f"      serial console: {tty}")
        print(f"[2/5] board state over mpremote: {_describe(tty)}")
        board.write_control({**board.control(), "link": "down"})
        print(f"[3/5] link cut through the control channel: {_describe(tty)}")
        note = workdir / "note.txt"
        note.write_text("written before the power cut\n")
        _mpremote(tty, "fs", "cp", str(note), ":note.txt")
        board.stop(power_cut=True)
        print("[4/5] wrote note.txt to flash, then cut power (SIGKILL)")
        tty = board.start(image, 4 * 1024 * 1024)
        survived = _mpremote(tty, "fs", "cat", ":note.txt").strip()
        print(f"[5/5] after power-on, note.txt reads: {survived!r}")
        print(
            "The fleet demo (broker, collector, settlement, report) is not built yet: see README."
        )
    finally:
        board.stop(power_cut=True)
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    return 0
