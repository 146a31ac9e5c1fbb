"""The impostor matrix against the real Mosquitto configured by `daozhang broker`.

Every attempt to speak for another device is refused (no CONNACK success) or dropped by the
ACL; a privileged subscriber (the collector identity) proves that dropped messages never reach
anyone, and a good device keeps publishing throughout: its traffic is all delivered.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.security.pki import Pki

from tests.security.mqtt_clients import Peer, connect, subscribe

NOT_AUTHORIZED = 135  # MQTT v5 PUBACK / SUBACK reason code


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    opened: list[Peer] = []
    yield opened
    for peer in opened:
        if peer.connected.is_set():
            peer.close()


def _as(peers: list[Peer], peer: Peer) -> Peer:
    peers.append(peer)
    return peer


def _settle(spy: Peer, marker_topic: str, good: Peer) -> None:
    """Wait until a marker published after the attempts reaches the spy: anything the broker
    was going to deliver before it has been delivered (one connection, in order)."""
    good.publish(marker_topic, b"marker")
    deadline = time.monotonic() + 5
    while marker_topic not in spy.topics() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker_topic in spy.topics()


def test_impostor_matrix(
    fleet_broker: Mosquitto, fleet_pki: Pki, foreign_pki: Pki, peers: list[Peer]
) -> None:
    ca = fleet_pki.ca_cert_path
    port = fleet_broker.port
    listeners = fleet_broker.listeners
    assert listeners is not None and fleet_broker.url.startswith("mqtts://")
    password_port = getattr(listeners, "password_port")  # noqa: B009

    spy = _as(peers, connect(port, ca, fleet_pki.collector_dir("main")))
    assert spy.connected.is_set(), spy.refused
    assert subscribe(spy, "dz/v1/+/up", "dz/v1/+/hb", "dz/v1/+/status") == [1, 1, 1]
    # Collectors (one identity each) share the load with a v5 shared subscription.
    shared = _as(peers, connect(port, ca, fleet_pki.collector_dir("spare")))
    assert subscribe(shared, "$share/collectors/dz/v1/+/up") == [1]

    good = _as(peers, connect(port, ca, fleet_pki.device_dir("devB02"), client_id="devB02"))
    assert good.connected.is_set(), good.refused
    subscribe(good, "dz/v1/devB02/ack")
    sent_by_good: list[bytes] = []

    def good_traffic() -> None:
        payload = f"batch {len(sent_by_good)}".encode()
        assert good.publish("dz/v1/devB02/up", payload) == 0
        sent_by_good.append(payload)

    good_traffic()

    # --- device A, with its own valid certificate, tries to be B ---------------------------
    # Client id "devB02" and username "devB02": identity is still A's certificate CN.
    attacker = _as(
        peers,
        connect(
            port,
            ca,
            fleet_pki.device_dir("devA01"),
            client_id="devB02-impostor",
            username="devB02",
            password="x",
        ),
    )
    assert attacker.connected.is_set(), attacker.refused
    for leaf in ("up", "hb", "status"):
        assert attacker.publish(f"dz/v1/devB02/{leaf}", b"forged") == NOT_AUTHORIZED
        good_traffic()
    # A may not fake acks or commands either, not even for itself.
    assert attacker.publish("dz/v1/devB02/ack", b"forged ack") == NOT_AUTHORIZED
    assert attacker.publish("dz/v1/devA01/ack", b"self ack") == NOT_AUTHORIZED
    assert attacker.publish("dz/v1/devB02/cmd", b"forged cmd") == NOT_AUTHORIZED
    # Nor publish on a topic outside the contract.
    assert attacker.publish("dz/v1/devA01/other", b"x") == NOT_AUTHORIZED
    # Subscribing to B's ack/cmd: refused, or granted and then filtered at delivery.
    codes = subscribe(attacker, "dz/v1/devB02/ack", "dz/v1/devB02/cmd", "dz/v1/+/ack", "#")
    assert all(code in (1, NOT_AUTHORIZED) for code in codes)
    # Its own topic works: the spy sees it, which proves the spy would have seen the rest.
    assert attacker.publish("dz/v1/devA01/up", b"own") == 0

    # The collector acks B; B gets it, A (subscribed every way) does not.
    collector = spy
    collector.publish("dz/v1/devB02/ack", b"ack for B")
    collector.publish("dz/v1/devB02/cmd", b"cmd for B")

    # A last will naming B's status topic: Mosquitto 2.0 checks it when it fires, and drops it.
    will = connect(port, ca, fleet_pki.device_dir("devA01"), will_topic="dz/v1/devB02/status")
    if will.connected.is_set():
        will.drop()
    own_will = connect(
        port,
        ca,
        fleet_pki.device_dir("devA01"),
        will_topic="dz/v1/devA01/status",
        will_payload=b"offline",
    )
    assert own_will.connected.is_set(), own_will.refused
    own_will.drop()  # control: a will on its own topic does reach the spy

    # --- credentials the broker must refuse outright ---------------------------------------
    wrong_ca = connect(port, ca, foreign_pki.device_dir("devB02"), client_id="devB02")
    assert not wrong_ca.connected.is_set() and wrong_ca.refused, "foreign CA accepted"
    no_cert = connect(port, ca, None, username="devB02", password="x")
    assert not no_cert.connected.is_set() and no_cert.refused, "no certificate accepted"
    good_traffic()

    password = (fleet_pki.device_dir("devP03") / "password").read_text()
    wrong_password = connect(password_port, ca, None, username="devP03", password="wrong")
    assert "connack" in wrong_password.refused, wrong_password.refused
    other_user = connect(password_port, ca, None, username="devB02", password=password)
    assert "connack" in other_user.refused, "another device's name with P's password"
    anonymous = connect(password_port, ca, None)
    assert anonymous.refused, "anonymous accepted"
    collector_name = connect(password_port, ca, None, username="collector.main", password="")
    assert collector_name.refused, "collector identity over the password listener"
    good_traffic()

    # The password device: right password works, and the same ACL holds for it.
    pw_device = _as(peers, connect(password_port, ca, None, username="devP03", password=password))
    assert pw_device.connected.is_set(), pw_device.refused
    assert pw_device.publish("dz/v1/devB02/up", b"forged by P") == NOT_AUTHORIZED
    assert pw_device.publish("dz/v1/devP03/up", b"own") == 0

    _settle(spy, "dz/v1/devB02/hb", good)
    received = spy.topics()
    forged = [payload for topic, payload in spy.messages if b"forged" in payload]
    assert forged == [], f"the ACL let through: {forged}"
    assert "dz/v1/devA01/up" in received and "dz/v1/devP03/up" in received
    assert "dz/v1/devA01/status" in received and "dz/v1/devB02/status" not in received
    assert [p for t, p in shared.messages if t == "dz/v1/devB02/up"] == sent_by_good
    good_up = [p for t, p in spy.messages if t == "dz/v1/devB02/up"]
    assert good_up == sent_by_good  # all of B's traffic, in order, nothing else
    assert good.topics() == ["dz/v1/devB02/ack"]
    assert attacker.topics() == []


def test_revoked_certificate_is_refused(
    fleet_broker: Mosquitto, fleet_pki: Pki, peers: list[Peer]
) -> None:
    ca = fleet_pki.ca_cert_path
    before = _as(peers, connect(fleet_broker.port, ca, fleet_pki.device_dir("devR99")))
    assert before.connected.is_set(), before.refused
    before.close()
    peers.remove(before)

    fleet_pki.revoke("devR99")
    assert fleet_broker.process is not None
    fleet_broker.process.send_signal(signal.SIGHUP)  # Mosquitto 2.0 reloads the CRL, no restart
    deadline = time.monotonic() + 5  # the reload happens in the broker's own time
    while True:
        after = connect(fleet_broker.port, ca, fleet_pki.device_dir("devR99"))
        if not after.connected.is_set() or time.monotonic() > deadline:
            break
        after.close()
        time.sleep(0.2)
    assert not after.connected.is_set() and after.refused, "revoked certificate accepted"
    other = _as(peers, connect(fleet_broker.port, ca, fleet_pki.device_dir("devA01")))
    assert other.connected.is_set(), other.refused  # the rest of the fleet is unaffected


def test_another_devices_client_id_never_takes_over_its_session(
    fleet_broker: Mosquitto, fleet_pki: Pki, peers: list[Peer]
) -> None:
    """MQTT drops a session's holder when a new connection brings the same client id. The
    broker replaces every client id by the identity, so a device that knows B's id takes over
    only its own session: B stays connected and keeps its acks."""
    ca = fleet_pki.ca_cert_path
    port = fleet_broker.port
    good = _as(peers, connect(port, ca, fleet_pki.device_dir("devB02"), client_id="devB02"))
    assert good.connected.is_set(), good.refused
    subscribe(good, "dz/v1/devB02/ack")
    attacker = _as(peers, connect(port, ca, fleet_pki.device_dir("devA01"), client_id="devB02"))
    assert attacker.connected.is_set(), attacker.refused
    assert not good.dropped.wait(2), f"B was disconnected: {good.drop_reason}"
    collector = _as(peers, connect(port, ca, fleet_pki.collector_dir("main")))
    collector.publish("dz/v1/devB02/ack", b"ack for B")
    deadline = time.monotonic() + 5
    while not good.topics() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert good.topics() == ["dz/v1/devB02/ack"] and attacker.topics() == []

    # The same identity twice (a collector's certificate copied to a second process): the
    # newer connection takes the session over: one identity per collector process.
    twin = _as(peers, connect(port, ca, fleet_pki.collector_dir("main")))
    assert twin.connected.is_set(), twin.refused
    assert collector.dropped.wait(5), "two connections held one identity's session"
