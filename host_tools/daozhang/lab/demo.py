"""`daozhang demo`: the whole system end to end, in one command.

The fleet demo is `sim run` on the shipped `demo.toml`: Mosquitto, the collector on SQLite,
20 virtual boards (healthy, 2G and flaky links), one simulated business day, its settlement
files, then the correlation summary and the HTML report's path; then the fleet console on the
demo's store, with its address and a login made for it (`--no-console`: end there). Ctrl-C
stops every process it started.

When this build lacks a part the fleet demo needs, the demo says which, and shows what does
work: a virtual board on LittleFS flash driven by the real mpremote, through a power cut.
"""

from __future__ import annotations

import argparse
import ast
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from daozhang.errors import DaozhangError
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.fleet import scenario as scenario_mod
from daozhang.lab.fleet.runner import missing_parts, run_scenario
from daozhang.lab.fleet.supervisor import Supervisor

HELP = "run the end-to-end demonstration"

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
    parser.add_argument(
        "--no-console", action="store_true", help="do not start the web console afterwards"
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
        if not args.no_console:
            _serve_console(result.db_url, out, progress)
    return 0 if result.ok else 1


def start_console(sup: Supervisor, db_url: str) -> tuple[str, str, str]:
    """Start `daozhang console` on `db_url` under `sup`, with an admin login made for it;
    returns (address, name, password)."""
    from daozhang.console.users import add_user
    from daozhang.ports import free_port, wait_listening
    from daozhang.schema import open_database

    password = secrets.token_urlsafe(12)
    name = f"demo-{secrets.token_hex(3)}"  # a new one each run, never a known default
    with open_database(db_url, create=False) as store:
        add_user(store, name, "admin", password)
    port = free_port()
    argv = ["console", "--db", db_url, "--listen", f"127.0.0.1:{port}"]
    console = sup.spawn("console", [sys.executable, "-m", "daozhang.cli", *argv])
    if not wait_listening(port, 30):
        raise DaozhangError(f"the console did not start; see {console.log}")
    return f"http://127.0.0.1:{port}/", name, password


def _serve_console(db_url: str, out: Path, progress: Any) -> None:
    """The web console on the demo's store, with its address and login, until Ctrl-C."""
    with Supervisor(out / "logs", reap_orphans=True) as sup:
        address, name, password = start_console(sup, db_url)
        print(f"\n到账控制台 console: {address}", flush=True)
        print(f"  登录 login: {name}  密码 password: {password}", flush=True)
        progress("the console runs until Ctrl-C")
        while all(child.alive() for child in sup.children()):
            time.sleep(0.5)


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
