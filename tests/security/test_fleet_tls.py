"""FleetTls: the one object the demo and the simulation use to run with security on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.collector.service import Collector, CollectorConfig
from daozhang.errors import DaozhangError
from daozhang.lab.fleet.tls import FleetTls
from daozhang.security.pki import Pki

from tests.security.mqtt_clients import connect


def test_fleet_tls_wires_broker_collector_and_flash(tmp_path: Path) -> None:
    tls = FleetTls.create(tmp_path / "pki", ["POS0001", "POS0002"], collectors=["c0", "c1"])
    broker = Mosquitto(workdir=tmp_path / "b", listeners=tls.listeners(tmp_path / "b")).start()
    try:
        assert broker.url.startswith("mqtts://")
        args = tls.flash_args("POS0002")
        assert args[0::2] == ["--ca", "--client-cert", "--client-key"]
        device = connect(broker.port, Path(args[1]), Path(args[3]).parent)
        assert device.connected.is_set(), device.refused
        assert device.publish("dz/v1/POS0002/up", b"x") == 0
        assert device.publish("dz/v1/POS0001/up", b"x") == 135
        device.close()
        tls_dir = tls.collector_args()[1]
        config = CollectorConfig(broker=broker.url, db_url="sqlite:///x", tls_dir=tls_dir)
        assert config.tls_dir and Path(tls_dir, "client.crt").is_file()
        # Two collector processes, one identity each: both hold their sessions at once.
        ca = Path(args[1])
        first, second = (connect(broker.port, ca, Path(tls.collector_args(i)[1])) for i in (0, 1))
        assert first.connected.is_set() and second.connected.is_set()
        assert not first.dropped.wait(1), first.drop_reason
        first.close()
        second.close()
    finally:
        broker.stop()


def test_collector_refuses_mqtts_without_an_identity(tmp_path: Path, capsys) -> None:
    from daozhang.cli import main

    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["collect", "--broker", "mqtts://127.0.0.1:1", "--db", db]) == 2
    assert "needs --tls-dir" in capsys.readouterr().err
    missing = str(tmp_path / "nothing")
    assert (
        main(["collect", "--broker", "mqtts://127.0.0.1:1", "--db", db, "--tls-dir", missing]) == 2
    )
    assert "TLS identity incomplete" in capsys.readouterr().err


def test_collector_does_not_wait_for_a_broker_it_cannot_trust(
    fleet_broker: Mosquitto, foreign_pki: Pki, tmp_path: Path
) -> None:
    """A certificate that fails verification will fail the same way in a minute: say so now."""
    foreign_pki.issue_collector("main")
    config = CollectorConfig(
        broker=fleet_broker.url,
        db_url=f"sqlite:///{tmp_path / 'c.db'}",
        tls_dir=str(foreign_pki.collector_dir("main")),
    )
    started = time.monotonic()
    with pytest.raises(DaozhangError, match="failed TLS verification"):
        Collector(config).connect()
    assert time.monotonic() - started < 5
