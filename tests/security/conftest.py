"""A fleet PKI for the security tests: good devices, a revocable one, a password-only one,
a collector, and a second CA whose certificates the broker must refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daozhang.broker.config import FleetListeners
from daozhang.broker.mosquitto import Mosquitto
from daozhang.security.pki import Pki


@pytest.fixture(scope="module")
def fleet_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pki = Pki(tmp_path_factory.mktemp("pki"))
    pki.init([])
    for device in ("devA01", "devB02", "devR99"):
        pki.issue_device(device)
    pki.issue_device("devP03", cert=False, password=True)
    pki.issue_collector("main")
    pki.issue_collector("spare")  # a second collector process has its own identity
    return pki


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA: it issues a certificate with CN devB02, exactly like the real one."""
    pki = Pki(tmp_path_factory.mktemp("foreign"))
    pki.init([])
    pki.issue_device("devB02")
    return pki


@pytest.fixture
def fleet_broker(tmp_path: Path, fleet_pki: Pki) -> Iterator[Mosquitto]:
    listeners = FleetListeners(fleet_pki, tmp_path / "broker", password_port=0)
    broker = Mosquitto(workdir=tmp_path / "broker", listeners=listeners).start()
    try:
        yield broker
    finally:
        broker.stop()
