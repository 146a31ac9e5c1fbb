"""TLS and per-device identity for a whole simulated fleet, in one object: what the demo and
the fleet simulation need to run with security on (`daozhang sim`, `daozhang demo`).

    tls = FleetTls.create(out / "pki", ["POS0001", "POS0002"])
    broker = Mosquitto(workdir, listeners=tls.listeners(workdir)).start()   # mqtts://
    collect --broker {broker.url} ... {tls.collector_args()}
    flash --device-id POS0001 --broker {broker.url} ... {tls.flash_args("POS0001")}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from daozhang.broker.config import FleetListeners
from daozhang.security.pki import Pki

# The operator's host tools (`daozhang ota rollout`, `device cmd`) get an identity of their own
# beside the collectors': the broker allows one session per identity.
TOOL = "tool"


@dataclass
class FleetTls:
    pki: Pki
    collectors: tuple[str, ...] = ("main",)

    @classmethod
    def create(
        cls,
        root: Path,
        devices: Iterable[str],
        collectors: Iterable[str] = ("main",),
        valid_from: dt.datetime | None = None,
    ) -> FleetTls:
        """A fresh PKI with one certificate per device and one identity per collector process
        (the broker gives each identity one session: broker/config.py). `valid_from`: the
        certificates are valid from then at the latest (boards whose clocks stand on a past
        business day check their certificates' dates against it, as real devices do)."""
        pki = Pki(root, valid_from)
        pki.init([])
        for dev in devices:
            pki.issue_device(dev)
        names = tuple(collectors)
        for name in (*names, TOOL):
            pki.issue_collector(name)
        return cls(pki, names)

    def add_device(self, dev: str) -> None:
        self.pki.issue_device(dev)

    def listeners(self, workdir: Path, password_port: int | None = None) -> FleetListeners:
        return FleetListeners(self.pki, workdir, password_port=password_port)

    def collector_args(self, index: int = 0) -> list[str]:
        """`daozhang collect` options for collector process `index` (its own identity)."""
        return ["--tls-dir", str(self.pki.collector_dir(self.collectors[index]))]

    def tool_dir(self) -> Path:
        """The `--tls-dir` of the operator's tools (`daozhang ota rollout`, `device cmd`)."""
        return self.pki.collector_dir(TOOL)

    def flash_args(self, dev: str) -> list[str]:
        slots = self.pki.device_dir(dev)
        return [
            "--ca",
            str(slots / "ca.pem"),
            "--client-cert",
            str(slots / "client.crt"),
            "--client-key",
            str(slots / "client.key"),
        ]
