"""TLS and per-device identity for a whole simulated fleet, in one object: what the demo and
the fleet simulation need to run with security on (`daozhang sim`, `daozhang demo`).

    tls = FleetTls.create(out / "pki", ["POS0001", "POS0002"])
    broker = Mosquitto(workdir, listeners=tls.listeners(workdir)).start()   # mqtts://
    collect --broker {broker.url} ... {tls.collector_args()}
    flash --device-id POS0001 --broker {broker.url} ... {tls.flash_args("POS0001")}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from daozhang.broker.config import FleetListeners
from daozhang.security.pki import Pki


@dataclass
class FleetTls:
    pki: Pki
    collector: str = "main"

    @classmethod
    def create(cls, root: Path, devices: Iterable[str], collector: str = "main") -> FleetTls:
        """A fresh PKI with one certificate per device and one collector identity."""
        pki = Pki(root)
        pki.init([])
        for dev in devices:
            pki.issue_device(dev)
        pki.issue_collector(collector)
        return cls(pki, collector)

    def add_device(self, dev: str) -> None:
        self.pki.issue_device(dev)

    def listeners(self, workdir: Path, password_port: int | None = None) -> FleetListeners:
        return FleetListeners(self.pki, workdir, password_port=password_port)

    def collector_args(self) -> list[str]:
        return ["--tls-dir", str(self.pki.collector_dir(self.collector))]

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
