"""A real Mosquitto broker on loopback, configured by the project."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from daozhang.errors import DaozhangError
from daozhang.ports import free_port, wait_listening

# The largest packet a fleet needs: a device's batch (at most 8 KB, DESIGN §1.3) plus the
# 32-byte HMAC and the PUBLISH header (fixed header, topic `dz/v1/<32 chars>/up`, packet id:
# under 64 bytes). Mosquitto 2.0 (`max_packet_size`, counted over the whole packet) drops the
# connection of a client that sends more, so one runaway publisher cannot make the broker and
# every subscriber hold megabytes per message; collectors and devices refuse larger ones too.
MAX_PACKET_SIZE = 8192 + 32 + 64


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise DaozhangError(
        "mosquitto is not installed: run `./run test` as root, or `apt-get install mosquitto`"
    )


class Listeners(Protocol):
    """Replaces the default anonymous listener (e.g. `daozhang.broker.config.FleetListeners`:
    TLS, per-device identity, ACLs)."""

    @property
    def scheme(self) -> str: ...

    def lines(self, port: int) -> list[str]: ...


@dataclass
class Mosquitto:
    """One broker process; `start()` writes its config under `workdir` and waits for it."""

    workdir: Path
    port: int = 0
    persistence: bool = True
    extra_config: list[str] = field(default_factory=list)
    listeners: Listeners | None = None
    # 0: no limit (a test that must push an oversized message through the broker).
    max_packet_size: int = MAX_PACKET_SIZE
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = self.listeners.scheme if self.listeners else "mqtt"
        return f"{scheme}://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        if self.listeners is None:
            listen = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        else:
            listen = self.listeners.lines(self.port)
        lines = [
            *listen,
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            *([f"max_packet_size {self.max_packet_size}"] if self.max_packet_size else []),
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
