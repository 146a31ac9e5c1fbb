"""The collector's log: one line per event on stderr, for the journal of its supervisor."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    sys.stderr.write(f"daozhang collect: {message}\n")
    sys.stderr.flush()
