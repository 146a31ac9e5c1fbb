"""Helper process for test_supervisor: a supervisor with an awkward tree of children.

Prints one JSON line with the pids it started, then waits to be interrupted or killed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from daozhang.lab.fleet.supervisor import Supervisor

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
# A grandchild that leaves the group with setsid: only the subreaper can find it.
ESCAPER = (
    "import subprocess, sys, time; "
    "p = subprocess.Popen(['sleep', '600'], start_new_session=True); "
    "print(p.pid, flush=True); time.sleep(600)"
)


def main() -> int:
    logdir = Path(sys.argv[1])
    try:
        with Supervisor(logdir, grace_s=1.0, reap_orphans=True) as sup:
            plain = sup.spawn("sleeper", ["sleep", "600"])
            shell = sup.spawn("shell", ["sh", "-c", "sleep 600 & sleep 600 & wait"])
            stubborn = sup.spawn("stubborn", [sys.executable, "-c", STUBBORN])
            escaper = sup.spawn("escaper", [sys.executable, "-c", ESCAPER])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (logdir / "escaper.log").read_text():
                time.sleep(0.02)
            escaped = int((logdir / "escaper.log").read_text().split()[0])
            pids = [plain.pid, shell.pid, stubborn.pid, escaper.pid, escaped]
            print(json.dumps(pids), flush=True)
            time.sleep(600)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
