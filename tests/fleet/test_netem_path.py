"""netem mode's data path, for real: a client in a board's namespace reaches the broker only
through the proxy inside that namespace and the veth (root only)."""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.fleet import plan
from daozhang.lab.fleet.linkpath import broker_listeners, netem_namespaces, open_netem_path
from daozhang.lab.fleet.links import BUILTIN_LINKS
from daozhang.lab.fleet.scenario import Device
from daozhang.lab.fleet.supervisor import Supervisor
from daozhang.ports import free_port

pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.skipif(os.geteuid() != 0, reason="netem mode needs root (ip netns, veth, tc)"),
]


def client(name: str, port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    return c


def test_boards_reach_the_broker_only_through_their_namespace_path(tmp_path: Path) -> None:
    devices = [Device(i, f"dz000{i + 1}", "g", BUILTIN_LINKS["good"]) for i in range(2)]
    got: queue.Queue[bytes] = queue.Queue()
    with Supervisor(tmp_path / "logs", handle_signals=False) as sup:
        spaces = netem_namespaces(devices, sup, f"{os.getpid() % 10000}")
        port = free_port()
        broker = Mosquitto(
            tmp_path / "broker", port=port, extra_config=broker_listeners(spaces, port)
        ).start()
        sup.adopt("mosquitto", broker.stop)
        paths = [open_netem_path(ns, broker, sup) for ns in spaces]
        host = client("host", broker.port)
        host.on_message = lambda c, u, msg: got.put(msg.payload)
        host.subscribe("dz/#", qos=1)
        time.sleep(0.3)

        # The board's side: a client in namespace 0 on its own loopback (the proxy).
        board = spaces[0].call(lambda: client("dz0001", paths[0].port))
        board.publish("dz/v1/dz0001/up", b"hello", qos=1).wait_for_publish(5)
        assert got.get(timeout=5) == b"hello"

        paths[0].apply(plan.LinkState(path=plan.BLACKHOLE))
        board.publish("dz/v1/dz0001/up", b"held", qos=1)
        with pytest.raises(queue.Empty):
            got.get(timeout=1.5)
        paths[0].apply(plan.LinkState(kbps=64))  # open again, shaped by tbf on the veth
        assert got.get(timeout=10) == b"held"  # a blackhole holds bytes; it never drops them
        assert "tbf" in spaces[0].qdiscs()

        # Namespace 1 cannot use namespace 0's path: its loopback has no such proxy.
        def elsewhere() -> None:
            client("dz0002", paths[0].port)

        with pytest.raises(OSError):
            spaces[1].call(elsewhere)
        board.loop_stop()
        host.loop_stop()
    assert not any(ns.exists() for ns in spaces)
