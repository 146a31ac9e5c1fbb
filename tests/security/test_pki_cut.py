"""`daozhang pki cut`: the connection a revoked terminal still holds is closed, against the real
TLS broker; the tool refuses to cut an identity that is not revoked, and stops when the broker
has not reloaded the CRL (the terminal would reconnect at once)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from daozhang.broker.config import FleetListeners
from daozhang.broker.mosquitto import Mosquitto
from daozhang.cli import main as cli_main
from daozhang.security.pki import Pki

from tests.security.mqtt_clients import Peer, connect


@pytest.fixture
def fleet_pki(tmp_path: Path) -> Pki:
    """A PKI per test (revocations do not carry over); conftest's `fleet_broker` serves it."""
    pki = Pki(tmp_path / "pki")
    pki.init([])
    for device in ("devK07", "devX08", "devA01"):
        pki.issue_device(device)
    pki.issue_device("devP03", cert=False, password=True)  # a board without a client cert
    return pki


@pytest.fixture
def pki(fleet_pki: Pki) -> Pki:
    return fleet_pki


@pytest.fixture
def broker(fleet_broker: Mosquitto) -> Mosquitto:
    return fleet_broker


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    opened: list[Peer] = []
    yield opened
    for peer in opened:
        peer.close()


def _connect(peers: list[Peer], broker: Mosquitto, pki: Pki, dev: str) -> Peer:
    peer = connect(broker.port, pki.ca_cert_path, pki.device_dir(dev))
    peers.append(peer)
    return peer


def _reload_crl(broker: Mosquitto, pki: Pki, probe: str) -> None:
    """SIGHUP, then wait until the broker refuses `probe`, a revoked identity nobody else uses
    (probing with the thief's own certificate would take its session over and prove nothing)."""
    assert broker.process is not None
    broker.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while True:
        attempt = connect(broker.port, pki.ca_cert_path, pki.device_dir(probe))
        if not attempt.connected.is_set():
            return
        attempt.close()
        assert time.monotonic() < deadline, "the broker did not reload its CRL"
        time.sleep(0.2)


def _cut(pki: Pki, broker: Mosquitto, dev: str) -> int:
    return cli_main(
        ["pki", "cut", dev, "--dir", str(pki.root), "--broker", f"mqtts://127.0.0.1:{broker.port}"]
    )


def test_cut_closes_the_connection_a_revoked_terminal_still_holds(
    pki: Pki, broker: Mosquitto, peers: list[Peer], capsys: pytest.CaptureFixture[str]
) -> None:
    thief = _connect(peers, broker, pki, "devK07")
    bystander = _connect(peers, broker, pki, "devA01")
    assert thief.connected.is_set() and bystander.connected.is_set()
    pki.revoke("devK07")
    pki.revoke("devX08")
    _reload_crl(broker, pki, probe="devX08")
    assert not thief.dropped.wait(1), "revocation alone already closed the connection"

    assert _cut(pki, broker, "devK07") == 0
    out = capsys.readouterr().out
    assert "taken over and closed" in out and "revoked certificate is refused" in out
    assert thief.dropped.wait(5), "the revoked terminal is still connected"
    again = connect(broker.port, pki.ca_cert_path, pki.device_dir("devK07"))
    assert not again.connected.is_set() and again.refused
    assert not bystander.dropped.is_set(), "the rest of the fleet was disturbed"
    index = json.loads(pki.index_path.read_text())
    assert len(index["identities"]["devK07"]["cuts"]) == 1
    assert "cuts" not in index["identities"]["devA01"]
    assert sorted(p.name for p in pki.device_dir("devK07").iterdir()) == [
        "ca.pem",
        "client.crt",
        "client.key",
    ]  # the one-off certificate was never written to the PKI


def test_a_password_only_devices_connection_ends_with_the_reload_and_cut_still_applies(
    pki: Pki, broker: Mosquitto, peers: list[Peer], capsys: pytest.CaptureFixture[str]
) -> None:
    """Mosquitto checks logins again when SIGHUP reloads the password file, so a revoked
    password-only board is dropped by the reload itself (unlike a certificate). `cut` works
    for it too: the client id is the identity on every listener, so its certificate listener
    can take over a session a password login held."""
    listeners = broker.listeners
    assert isinstance(listeners, FleetListeners) and listeners.password_port
    password = (pki.device_dir("devP03") / "password").read_text()
    port = listeners.password_port
    board = connect(port, pki.ca_cert_path, None, username="devP03", password=password)
    peers.append(board)
    assert board.connected.is_set(), board.refused
    pki.revoke("devP03")  # removes its password
    pki.revoke("devX08")
    _reload_crl(broker, pki, probe="devX08")
    assert board.dropped.wait(5), "the reload kept a revoked password login connected"
    assert _cut(pki, broker, "devP03") == 0
    assert "no certificate here to check" in capsys.readouterr().out
    again = connect(port, pki.ca_cert_path, None, username="devP03", password=password)
    assert not again.connected.is_set()


def test_cut_refuses_an_identity_that_is_not_revoked(
    pki: Pki, broker: Mosquitto, peers: list[Peer], capsys: pytest.CaptureFixture[str]
) -> None:
    device = _connect(peers, broker, pki, "devA01")
    assert device.connected.is_set()
    assert _cut(pki, broker, "devA01") != 0
    err = capsys.readouterr().err
    assert "devA01 is not revoked" in err and "Traceback" not in err
    assert not device.dropped.wait(1), "an active device was disconnected"
    assert _cut(pki, broker, "devZZ99") != 0
    assert "no such identity" in capsys.readouterr().err


def test_cut_stops_when_the_broker_still_accepts_the_revoked_certificate(
    pki: Pki, broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    pki.revoke("devK07")  # and no SIGHUP: the broker still has the old CRL
    assert _cut(pki, broker, "devK07") != 0
    err = capsys.readouterr().err
    assert "still accepts devK07's revoked certificate" in err and "SIGHUP" in err
    assert "cuts" not in json.loads(pki.index_path.read_text())["identities"]["devK07"]
    plain = ["pki", "cut", "devK07", "--dir", str(pki.root), "--broker", "mqtt://127.0.0.1:1"]
    assert cli_main(plain) != 0
    assert "mqtts://" in capsys.readouterr().err
    nowhere = ["pki", "cut", "devK07", "--dir", str(pki.root), "--broker", "mqtts://127.0.0.1:1"]
    assert cli_main(nowhere) != 0
    assert "cannot reach the broker at 127.0.0.1:1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main([*nowhere, "--timeout", "-1"])
    assert "expected 0.5..300 seconds" in capsys.readouterr().err


def test_cut_closes_a_revoked_collectors_connection_too(
    pki: Pki, broker: Mosquitto, peers: list[Peer], capsys: pytest.CaptureFixture[str]
) -> None:
    """A collector host that is compromised is revoked like a terminal; its identity is
    `collector.NAME` and its credentials live in another folder, which `cut` must find."""
    pki.issue_collector("c1")
    collector = connect(broker.port, pki.ca_cert_path, pki.collector_dir("c1"))
    peers.append(collector)
    bystander = _connect(peers, broker, pki, "devA01")
    assert collector.connected.is_set(), collector.refused
    pki.revoke("collector.c1")
    pki.revoke("devX08")
    _reload_crl(broker, pki, probe="devX08")
    assert not collector.dropped.wait(1), "revocation alone already closed the connection"
    assert _cut(pki, broker, "collector.c1") == 0
    assert "revoked certificate is refused" in capsys.readouterr().out
    assert collector.dropped.wait(5), "the revoked collector is still connected"
    again = connect(broker.port, pki.ca_cert_path, pki.collector_dir("c1"))
    assert not again.connected.is_set() and again.refused
    assert not bystander.dropped.is_set()
    assert sorted(p.name for p in pki.collector_dir("c1").iterdir()) == [
        "ca.pem",
        "client.crt",
        "client.key",
    ]
