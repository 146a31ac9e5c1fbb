"""A real Mosquitto broker on loopback, configured by the project."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from daozhang.errors import DaozhangError
from daozhang.services.ports import free_port, wait_listening


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise DaozhangError(
        "mosquitto is not installed: run `./run test` as root, or `apt-get install mosquitto`"
    )


@dataclass
class Mosquitto:
    """One broker process; `start()` writes its config under `workdir` and waits for it."""

    workdir: Path
    port: int = 0
    persistence: bool = True
    extra_config: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        return "\n".join([*lines, *self.extra_config]) + "\n"

    def start(self) -> Mosquitto:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config_text())
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=log
        )
        if not wait_listening(self.port):
            self.stop()
            raise DaozhangError(f"mosquitto did not start on port {self.port}; see {log.name}")
        return self

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()
