"""The collector as a real process, for tests that kill it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class CollectorProcess:
    def __init__(self, broker: str, db_url: str, workdir: Path, name: str = "c1", *extra: str):
        self.argv = [
            sys.executable,
            "-m",
            "daozhang.cli",
            "collect",
            "--broker",
            broker,
            "--db",
            db_url,
            "--name",
            name,
            "--group",
            "g",
            *extra,
        ]
        self.log = workdir / f"collector-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, wait: bool = True) -> CollectorProcess:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stderr=log, stdout=log)
        self.starts += 1
        if wait:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if b"subscribed" in self.log.read_bytes()[offset:]:
                    return self
                if self.process.poll() is not None:
                    break
                time.sleep(0.02)
            raise RuntimeError(f"collector did not subscribe:\n{self.log.read_text()[-3000:]}")
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def stop(self) -> None:
        """As an operator stops it: SIGTERM (it stores its inbox for up to 5 s), then SIGKILL."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
