"""`daozhang demo`: the whole system end to end, in one command.

The fleet demo is `sim run` on the shipped `demo.toml`: Mosquitto, the collector on SQLite,
20 virtual boards (healthy, 2G and flaky links), one simulated business day, its settlement
files, then the correlation summary and the HTML report's path. Ctrl-C stops every process it
started.

When this build lacks a part the fleet demo needs, the demo says which, and shows what does
work: a virtual board on LittleFS flash driven by the real mpremote, through a power cut.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from daozhang.board.manager import VirtualBoard
from daozhang.errors import DaozhangError
from daozhang.fleet import scenario as scenario_mod
from daozhang.fleet.runner import missing_parts, run_scenario
from daozhang.fleet.supervisor import Supervisor

DEMO_SCENARIO = Path(scenario_mod.__file__).with_name("scenarios") / "demo.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="output folder (default: a new temp folder)")
    parser.add_argument(
        "--scenario",
        type=Path,
        default=DEMO_SCENARIO,
        help="scenario file (default: the shipped demo.toml)",
    )
    parser.add_argument(
        "--hold", action="store_true", help="board demo: keep the board on afterwards, until Ctrl-C"
    )


def run(args: argparse.Namespace) -> int:
    out = args.out or Path(tempfile.mkdtemp(prefix="daozhang-demo-"))
    started = time.monotonic()

    def progress(text: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {text}", flush=True)

    missing = missing_parts()
    if missing:
        print("The fleet demo needs parts that are not in this build:", flush=True)
        for part in missing:
            print(f"  - {part}")
        print("Showing what works instead: one virtual board through a power cut.\n")
        return _board_demo(out, progress, args.hold)
    scenario = scenario_mod.load(args.scenario)
    progress(f"demo: {len(scenario.devices)} boards, {scenario.receipts} receipts, output in {out}")
    result = run_scenario(scenario, out, progress)
    progress("done" if result.ok else "done, with problems (see above)")
    if result.report is not None:
        print(f"\nHTML report: {result.report}")
    if result.db_url is not None:
        print("The store stays; what fleet and support staff would look at next:")
        for command in ("fleet status", "quarantine list"):
            print(f"  daozhang {command} --db {result.db_url}")
    return 0 if result.ok else 1


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


def _board_demo(out: Path, progress: Any, hold: bool) -> int:
    import os

    os.environ["DAOZHANG_STATE"] = str(out / "state")
    image = out / "demo.img"
    board = VirtualBoard.named("demo")
    with Supervisor(out / "logs", reap_orphans=True) as sup:
        sup.adopt("board demo", lambda: board.stop(power_cut=True))
        progress(f"[1/5] powering on a virtual board on {image} (4 MiB LittleFS2 flash)")
        tty = board.start(image, 4 * 1024 * 1024)
        progress(f"      serial console: {tty}")
        progress(f"[2/5] board state over mpremote: {_describe(tty)}")
        board.write_control({**board.control(), "link": "down"})
        progress(f"[3/5] link cut through the control channel: {_describe(tty)}")
        note = out / "note.txt"
        note.write_text("written before the power cut\n")
        _mpremote(tty, "fs", "cp", str(note), ":note.txt")
        board.stop(power_cut=True)
        progress("[4/5] wrote note.txt to flash, then cut power (SIGKILL)")
        tty = board.start(image, 4 * 1024 * 1024)
        survived = _mpremote(tty, "fs", "cat", ":note.txt").strip()
        progress(f"[5/5] after power-on, note.txt reads: {survived!r}")
        if hold:
            progress(f"the board stays on: mpremote connect {tty} resume repl; Ctrl-C stops it")
            while board.running():
                time.sleep(0.5)
    return 0
