"""`daozhang demo`: Ctrl-C stops every process it started; nothing is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fleet.proctree import alive, descendants


def mentioning(text: str) -> set[int]:
    """Every live process whose command line or environment names `text` (our temp folder)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob and alive(int(proc.name)):
            found.add(int(proc.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT])  # SIGTERM: test_supervisor.py
def test_interrupting_the_demo_leaves_no_process(tmp_path: Path, signum: int) -> None:
    env = {**os.environ, "DAOZHANG_STATE": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "daozhang.cli", "demo", "--out", str(tmp_path / "out"), "--hold"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    seen: set[int] = set()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        # Interrupt once boards are running: the moment something of ours is on a console.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            seen |= descendants(proc.pid)
            # The fleet demo: its boards are being flashed (brokers, collectors, boards and
            # mpremote sessions all running); the board demo (--hold): it holds its board.
            if "flashing" in line or "the board stays on" in line or not line:
                break
        time.sleep(3)
        seen |= descendants(proc.pid)
        assert any(
            "micropython" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
            for p in seen
            if alive(p)
        ), "".join(lines)
        proc.send_signal(signum)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 130, "".join(lines) + rest
        assert "daozhang: interrupted" in rest
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            {p for p in seen if alive(p)} or mentioning(str(tmp_path))
        ):
            time.sleep(0.1)
        assert {p for p in seen if alive(p)} == set()
        assert mentioning(str(tmp_path)) == set()
    finally:
        proc.kill()
        for pid in seen | mentioning(str(tmp_path)):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
