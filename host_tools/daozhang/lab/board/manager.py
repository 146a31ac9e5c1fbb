"""Start, stop, power-cut and control virtual boards.

A board's runtime state lives in `<state>/boards/<name>/`: the console symlink `tty`, the
relay's `relay.pid`, the MicroPython process's `mp.pid`, the control folder `hw/` (mounted
read-only on the board at /_hw), `board.log` (the board's stderr) and `start.json` (how it was
last started, so that a power cycle brings it back the same way).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daozhang.errors import DaozhangError, UsageError
from daozhang.lab.mp.run import micropython_argv
from daozhang.paths import BOARDS, FIRMWARE, state_dir
from daozhang.ports import free_port

BLOCK_SIZE = 4096
MIN_FLASH = 64 * 1024
MAX_FLASH = 64 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_SIZE = re.compile(r"^(\d+)([KkMm]?)$")


# A board's MicroPython heap when none is asked for. On the unix port the agent's bytecode
# (~105 KB of .mpy) is loaded onto the heap, where a real board keeps it in flash: 256K holds
# the code plus the agent's 64 KB object budget (measured by the firmware tests under
# `-X heapsize=64K`), so `board start` then `flash` works as the README shows.
DEFAULT_HEAP = "256K"


def parse_flash_size(text: str) -> int:
    """'4M', '512K' or a byte count; a whole number of 4 KiB blocks, 64 KiB to 64 MiB."""
    match = _SIZE.match(text.strip())
    if not match:
        raise UsageError(f"--flash-size {text!r}: expected a size like 4M, 512K or 1048576")
    size = int(match.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    if size % BLOCK_SIZE:
        raise UsageError(f"--flash-size {text!r}: must be a multiple of {BLOCK_SIZE} bytes")
    if not MIN_FLASH <= size <= MAX_FLASH:
        raise UsageError(f"--flash-size {text!r}: must be between 64K and 64M")
    return size


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"board name {name!r}: use 1-32 letters, digits, '_' or '-'")
    return name


@dataclass
class VirtualBoard:
    name: str
    root: Path

    @classmethod
    def named(cls, name: str) -> VirtualBoard:
        return cls(check_name(name), state_dir() / "boards" / name)

    @property
    def tty(self) -> Path:
        return self.root / "tty"

    @property
    def hw(self) -> Path:
        return self.root / "hw"

    def _pid(self, file: str) -> int | None:
        try:
            pid = int((self.root / file).read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        if _is_zombie(pid):
            return None
        return pid

    def relay_pid(self) -> int | None:
        return self._pid("relay.pid")

    def board_pid(self) -> int | None:
        return self._pid("mp.pid")

    def running(self) -> bool:
        return self.relay_pid() is not None and self.board_pid() is not None

    def control(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.hw / "control.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def write_control(self, control: dict[str, Any]) -> None:
        self.hw.mkdir(parents=True, exist_ok=True)
        tmp = self.hw / "control.json.tmp"
        tmp.write_text(json.dumps(control, sort_keys=True))
        os.replace(tmp, self.hw / "control.json")  # the board never sees a half-written file

    def set_clock(self, t: float, rate: float = 1.0, at: float | None = None) -> None:
        """Set the board's clock as one sets a real board's RTC: unix time `t` at host time
        `at` (default now), then `rate` board seconds per real second. The board's NTP and
        RTC both read it (boards/virtual/board.py); it survives power cycles (the control
        folder does). Uptime and the agent's timers stay real time."""
        if rate < 0:
            raise UsageError(f"clock rate {rate:g}: must not be negative")
        control = self.control()
        control["clock"] = {"t": t, "at": time.time() if at is None else at, "rate": rate}
        self.write_control(control)

    @property
    def terminal_port(self) -> int | None:
        """The loopback TCP port of the board's terminal link (its UART to the POS)."""
        try:
            port = json.loads((self.hw / "terminal.json").read_text()).get("tcp_port")
        except (OSError, ValueError):
            return None
        return port if isinstance(port, int) else None

    def _ensure_terminal_port(self) -> None:
        # Chosen once and kept across power cycles, like a cable: the POS reconnects to it.
        if self.terminal_port is None:
            tmp = self.hw / "terminal.json.tmp"
            tmp.write_text(json.dumps({"tcp_port": free_port()}))
            os.replace(tmp, self.hw / "terminal.json")

    def set_autostart(self, enabled: bool) -> None:
        flag = self.hw / "autostart"
        if enabled:
            flag.write_text("1\n")
        elif flag.exists():
            flag.unlink()

    def start(
        self,
        image: Path,
        flash_size: int,
        heapsize: str = DEFAULT_HEAP,
        board: str = "virtual",
        autostart: bool = False,
        dev: bool = True,
        timeout_s: float = 15.0,
        fs: str = "lfs2",
    ) -> Path:
        """Power the board on. `dev=False` runs only what is on its flash (as after
        `daozhang flash`); `fs="fat"` formats a blank image FAT instead of LittleFS2."""
        if fs not in ("lfs2", "fat"):
            raise UsageError(f"filesystem {fs!r}: expected lfs2 or fat")
        if self.running():
            raise DaozhangError(f"board {self.name!r} is already running on {self.tty}")
        image = image.resolve()
        _prepare_image(image, flash_size)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hw.mkdir(exist_ok=True)
        if not (self.hw / "control.json").exists():
            self.write_control({"link": "up", "signal": {"rat": "wifi", "rssi": -60}})
        self.set_autostart(autostart)
        self._ensure_terminal_port()
        for stale in ("tty", "mp.pid", "relay.pid"):
            path = self.root / stale
            if path.is_symlink() or path.exists():
                path.unlink()
        (self.root / "image").write_text(f"{image}\n")
        started = {
            "image": str(image),
            "flash_size": flash_size,
            "heapsize": heapsize,
            "board": board,
            "dev": dev,
            "fs": fs,
        }
        (self.root / "start.json").write_text(json.dumps(started, sort_keys=True))
        dev_dirs = [str(BOARDS / board), str(FIRMWARE)] if dev else []
        argv = [
            *micropython_argv(heapsize),
            "-i",
            str(BOARDS / "virtual" / "vboot.py"),
            str(image),
            str(flash_size // BLOCK_SIZE),
            str(self.hw),
            *(["--fs=fat"] if fs == "fat" else []),
            *dev_dirs,
        ]
        env = dict(os.environ)
        env["MICROPYPATH"] = f"{BOARDS / 'virtual'}:.frozen"
        relay_log = (self.root / "relay.log").open("ab")
        relay = subprocess.Popen(
            [sys.executable, "-m", "daozhang.lab.board.console", str(self.root), "--", *argv],
            stdin=subprocess.DEVNULL,
            stdout=relay_log,
            stderr=relay_log,
            env=env,
            start_new_session=True,  # survives the CLI; Ctrl-C in a shell does not reach it
        )
        (self.root / "relay.pid").write_text(f"{relay.pid}\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.tty.is_symlink() and self.board_pid() is not None:
                return self.tty
            if relay.poll() is not None:
                break
            time.sleep(0.02)
        self.stop(power_cut=True)
        log = (self.root / "board.log").read_text(errors="replace")[-2000:]
        raise DaozhangError(f"board {self.name!r} did not start; its log ends:\n{log}")

    def stop(self, power_cut: bool = False) -> bool:
        """Stop the board; `power_cut` kills the MicroPython process first (SIGKILL)."""
        board_pid, relay_pid = self.board_pid(), self.relay_pid()
        if board_pid is None and relay_pid is None:
            return False
        if board_pid is not None:
            _signal(board_pid, signal.SIGKILL if power_cut else signal.SIGTERM)
        if relay_pid is not None:
            _signal(relay_pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.board_pid() is None and self.relay_pid() is None:
                break
            time.sleep(0.02)
        else:
            for pid in (board_pid, relay_pid):
                if pid is not None:
                    _signal(pid, signal.SIGKILL)
        return True

    def how_it_ended(self, wait_s: float = 2.0, log_lines: int = 3) -> str | None:
        """How the board process last ended (the relay's log) and the last lines it wrote to
        stderr, or None if it is running or never ran: why a console session lost the board.

        The relay writes its line after the board process is gone; this waits up to `wait_s`
        for that, so that a session that has just lost the board does not read the previous end.
        """
        deadline = time.monotonic() + wait_s
        while (
            self.relay_pid() is not None
            and self.board_pid() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        if self.board_pid() is not None or self.relay_pid() is not None:
            return None
        try:
            relay_lines = (self.root / "relay.log").read_text(errors="replace").splitlines()
        except OSError:
            return None
        ended = [line for line in relay_lines if "board process ended" in line]
        if not ended:
            return None
        report = ended[-1]
        try:
            tail = (self.root / "board.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            tail = []
        if tail:
            report += "; its log ends: " + " | ".join(tail[-log_lines:])
        return report

    def power_cycle(self, dev: bool | None = None, autostart: bool | None = None) -> Path:
        """Cut the power and start again as last started (optionally changing `dev` and
        `autostart`): the virtual board's "reboot", as unplugging a USB board is."""
        try:
            started: dict[str, Any] = json.loads((self.root / "start.json").read_text())
        except (OSError, ValueError) as exc:
            raise DaozhangError(f"board {self.name!r} was never started here: {exc}") from exc
        if autostart is None:
            autostart = (self.hw / "autostart").exists()
        self.stop(power_cut=True)
        return self.start(
            Path(started["image"]),
            int(started["flash_size"]),
            heapsize=str(started["heapsize"]),
            board=str(started["board"]),
            autostart=autostart,
            dev=bool(started["dev"]) if dev is None else dev,
            fs=str(started.get("fs", "lfs2")),
        )

    def status(self) -> dict[str, Any]:
        image_file = self.root / "image"
        return {
            "name": self.name,
            "running": self.running(),
            "tty": str(self.tty) if self.tty.is_symlink() else None,
            "pid": self.board_pid(),
            "image": image_file.read_text().strip() if image_file.exists() else None,
            "control": self.control(),
            "terminal_port": self.terminal_port,
        }


def list_boards() -> list[VirtualBoard]:
    root = state_dir() / "boards"
    if not root.is_dir():
        return []
    return [VirtualBoard(p.name, p) for p in sorted(root.iterdir()) if p.is_dir()]


def board_of_console_link(port: str) -> VirtualBoard | None:
    """The virtual board whose `tty` link is `port`, whether or not it still runs (the link
    goes when the board does)."""
    path = os.path.abspath(port)
    return next((board for board in list_boards() if str(board.tty) == path), None)


def board_on_port(port: str) -> VirtualBoard | None:
    """The virtual board whose console is `port` (its `tty` link or the pty it points to)."""
    try:
        target = os.path.realpath(port)
    except OSError:
        return None
    for board in list_boards():
        if not board.tty.is_symlink():
            continue
        if os.path.abspath(port) == str(board.tty) or os.path.realpath(board.tty) == target:
            return board
    return None


def _prepare_image(image: Path, flash_size: int) -> None:
    if image.exists():
        actual = image.stat().st_size
        if actual != flash_size:
            raise UsageError(
                f"image {image} is {actual} bytes but --flash-size is {flash_size}: "
                "use the size it was created with, or a new image file"
            )
        return
    if not image.parent.is_dir():
        raise UsageError(f"--image {image}: folder {image.parent} does not exist")
    # A blank flash chip reads 0xFF; the board formats it LittleFS2 on first power-on.
    with image.open("wb") as f:
        f.write(b"\xff" * flash_size)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False
