"""The real `mpremote` against a virtual board's console, as a technician runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def mpremote(tty: Path | str, *args: str, timeout: float = 60) -> str:
    """`mpremote connect TTY resume ARGS...` (`resume`: the unix port has no soft reset);
    fails the test with mpremote's own words when it exits non-zero."""
    result = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", str(tty), "resume", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    return result.stdout.decode()
