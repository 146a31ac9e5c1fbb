"""The supervisor stops every process it started, however the run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daozhang.lab.fleet.supervisor import Supervisor

from tests.fleet.proctree import alive, descendants

HELPER = Path(__file__).with_name("supervised_tree.py")


def start_tree(tmp_path: Path) -> tuple[subprocess.Popen[str], set[int]]:
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    pids = set(json.loads(proc.stdout.readline()))
    time.sleep(0.3)  # let the shell fork its two sleeps
    everything = pids | descendants(proc.pid)
    assert len(everything) >= 7, everything  # 4 children, 2 shell sleeps, 1 escaped sleep
    assert all(alive(p) for p in everything)
    return proc, everything


def wait_gone(pids: set[int], timeout_s: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = {p for p in pids if alive(p)}
        if not left:
            return left
        time.sleep(0.05)
    return {p for p in pids if alive(p)}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_every_process_and_grandchild(tmp_path: Path, signum: int) -> None:
    proc, pids = start_tree(tmp_path)
    try:
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 130
        assert wait_gone(pids) == set()
    finally:
        proc.kill()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_direct_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    # SIGKILL cannot be handled, so nothing runs in the supervisor: the kernel's parent-death
    # signal ends its direct children. Their own children outlive them (documented limit).
    proc, pids = start_tree(tmp_path)
    logs = tmp_path / "logs"
    direct = {p for p in pids if Path(f"/proc/{p}/stat").exists() and _ppid(p) == proc.pid}
    assert len(direct) == 4
    try:
        proc.kill()
        proc.wait(timeout=10)
        assert wait_gone(direct) == set()
        assert (logs / "escaper.log").exists()
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_stop_all_in_process_stops_spawned_and_adopted(tmp_path: Path) -> None:
    stopped: list[str] = []
    with Supervisor(tmp_path, grace_s=1, handle_signals=False) as sup:
        first = sup.spawn("one", ["sleep", "600"])
        sup.adopt("board", lambda: stopped.append("board"))
        second = sup.spawn("two", ["sh", "-c", "echo hello; exec sleep 600"])
        time.sleep(0.2)
    assert not first.alive() and not second.alive()
    assert stopped == ["board"]
    assert (tmp_path / "two.log").read_text() == "hello\n"


SPARE_SCRIPT = """
import json, subprocess, sys, time
from pathlib import Path
from daozhang.lab.fleet.supervisor import Supervisor
bystander = subprocess.Popen(["sleep", "600"])  # e.g. a test session's database server
with Supervisor(Path(sys.argv[1]), grace_s=1, reap_orphans=True, handle_signals=False) as sup:
    # The shell leaves a sleep behind, which the subreaper inherits.
    sup.spawn("leaver", ["sh", "-c", "sleep 600 & echo $! > " + sys.argv[1] + "/escaped.pid"])
    time.sleep(0.5)
escaped = int((Path(sys.argv[1]) / "escaped.pid").read_text())
time.sleep(0.2)
state = lambda pid: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
print(json.dumps({"bystander": state(bystander.pid), "escaped": escaped}))
bystander.kill()
"""


def test_orphan_reaping_spares_children_the_process_had_before(tmp_path: Path) -> None:
    # Regression: run inside a pytest session, the reaper killed the session's PostgreSQL.
    result = subprocess.run(
        [sys.executable, "-c", SPARE_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["bystander"] in ("S", "R"), report
    assert not alive(report["escaped"]), report
