"""Argument types shared by the commands: a value out of range is refused by argparse, as
`daozhang: COMMAND: argument --OPTION: why`, before the command starts.

`cli.py` also holds every option of every command (the lab's too) to `out_of_range`: no
integer past what a 64-bit column holds, no float that is not finite.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

# The largest integer the store's columns hold (SQLite INTEGER, PostgreSQL BIGINT).
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def out_of_range(value: object) -> str | None:
    """Why a parsed option value cannot be used anywhere, or None: the one rule for all."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= INT64_MAX
    ):
        return f"{value} is out of range (at most {INT64_MAX:,})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {value}"
    return None


def integer(low: int, high: int = INT64_MAX) -> Callable[[str], int]:
    """An argparse type: an int within low..high, refused with what was given."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:,}, got {value}")
        return value

    return parse


def whole_number(low: int, high: int = INT64_MAX) -> Callable[[str], int]:
    """An argparse type: an int of at least `low` (0 or 1) and at most `high`."""
    return integer(low, high)


# A TCP port to listen on or connect to (0 would be "any port": never what a user means).
port_number = integer(1, 65535)


def number(low: float, high: float = math.inf, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite float within low..high (`above`: strictly more than low)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < low or (above and value == low):
            raise argparse.ArgumentTypeError(
                f"must be {'more than' if above else 'at least'} {low:g}, got {text}"
            )
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:g}, got {text}")
        return value

    return parse


def output_file(text: str) -> Path:
    """An argparse type: a file to write, in a folder that exists and may be written. Checked
    when the options are read, so that a command never does its work and then fails to save it."""
    path = Path(text)
    folder = path.parent
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder: give a file name")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: no folder {folder} (create it first)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{path}: the folder {folder} is not writable")
    return path


def input_file(text: str) -> Path:
    """An argparse type: a file that exists and can be read."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{path}: not readable")
    return path


def input_dir(text: str) -> Path:
    """An argparse type: a folder that exists (a PKI, a bundle's source)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: no such folder")
    return path


def folder(text: str) -> Path:
    """An argparse type: a folder that exists, or that can be made (nothing in its way is a
    file). Whether it may be written is the command's to say."""
    path = Path(text)
    for place in (path, *path.parents):
        if place.exists():
            if not place.is_dir():
                raise argparse.ArgumentTypeError(f"{path}: {place} is a file, not a folder")
            break
    return path


def duration(text: str) -> float:
    """`90m`, `2h` or `3d`, in seconds: more than zero, at most a year."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhd])\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"expected a duration like 90m, 2h or 3d, got {text!r}")
    seconds = float(m[1]) * {"m": 60, "h": 3600, "d": 86_400}[m[2]]
    if not 0 < seconds <= 366 * 86_400:
        raise argparse.ArgumentTypeError(f"expected more than 0 and at most a year, got {text!r}")
    return seconds


def tool_connection(parser: argparse.ArgumentParser, broker_required: bool = True) -> None:
    """`--broker`, `--tls-dir` and `--db` of a tool that talks to devices (`ota`, `device
    cmd`): its own broker identity, and the store that holds the devices' keys."""
    parser.add_argument(
        "--broker", required=broker_required, help="mqtt://HOST:PORT or mqtts://HOST:PORT"
    )
    parser.add_argument(
        "--tls-dir", help="for mqtts: a PKI folder of this tool's own (collector) identity"
    )
    parser.add_argument("--db", required=True, help="the collector's database (the device keys)")
