"""The update server against the real Mosquitto (daozhang.ota.serve): an offer nobody answered
is made again even when the rollout waits in short slices, and at once when the device's
heartbeat shows it never got it; the server is back within seconds of a broker restart (all
found by the fleet update through faults, tests/ota/fleet_update.py)."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cbor2
import paho.mqtt.client as mqtt
from daozhang.broker.mosquitto import Mosquitto
from daozhang.ota.bundle import MAGIC, BundleFile, Manifest, read_bundle
from daozhang.ota.serve import LOST_AFTER_S, Server
from paho.mqtt.enums import CallbackAPIVersion

from tests.waiting import wait_until

DEV = "POS-SRV-0001"
KEY = bytes(range(1, 33))


def tiny_bundle() -> bytes:
    data = b"print('v2')\n"
    files = (BundleFile("/main.py", len(data), hashlib.sha256(data).digest()),)
    manifest = Manifest("0.2.0", "virtual", "6.3", "0.1.0", files).encode()
    return MAGIC + struct.pack(">I", len(manifest)) + manifest + data


class Device:
    """The device's side of MQTT, as a plain paho client: what it hears on its `ota` topic,
    each message with the time it came."""

    def __init__(self, port: int) -> None:
        self.heard: list[tuple[float, bytes]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = lambda c, u, msg: self.heard.append(
            (time.monotonic(), msg.payload)
        )
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect("127.0.0.1", port)

    def subscribe(self) -> None:
        self.client.subscribe(f"dz/v1/{DEV}/ota", qos=1)
        assert self.subscribed.wait(5)


@contextmanager
def device_on(mosquitto: Mosquitto) -> Iterator[Device]:
    device = Device(mosquitto.port)
    device.client.loop_start()
    try:
        yield device
    finally:
        device.client.loop_stop()
        device.client.disconnect()


def test_an_unanswered_offer_is_made_again_between_short_waits(mosquitto: Mosquitto) -> None:
    with device_on(mosquitto) as device:
        device.subscribe()
        broker = f"mqtt://127.0.0.1:{mosquitto.port}"
        with Server(broker, read_bundle(tiny_bundle()), reoffer_s=1.0) as server:
            server.offer(DEV, KEY)
            # As `rollout.drive` waits: slices of less than the re-offer time.
            end = time.monotonic() + 3.5
            while time.monotonic() < end:
                server.wait(0.5)
        assert wait_until(lambda: len(device.heard) >= 3, timeout=2), len(device.heard)


def test_a_heartbeat_without_the_offer_brings_it_again_at_once(mosquitto: Mosquitto) -> None:
    with device_on(mosquitto) as device:
        broker = f"mqtt://127.0.0.1:{mosquitto.port}"
        with Server(broker, read_bundle(tiny_bundle())) as server:  # re-offers after 30 s
            server.offer(DEV, KEY)  # lost: the device is not subscribed yet
            time.sleep(0.5)  # gone through the broker before the device subscribes
            device.subscribe()
            heartbeat = cbor2.dumps({"v": 1, "dev": DEV, "fw": "0.1.0"})
            device.client.publish(f"dz/v1/{DEV}/hb", heartbeat)  # too soon after the offer
            time.sleep(LOST_AFTER_S + 0.5)
            assert device.heard == []
            device.client.publish(f"dz/v1/{DEV}/hb", heartbeat)
            sent = time.monotonic()
            assert wait_until(lambda: len(device.heard) == 1, timeout=5)
            server.wait(0.5)
        print(f"offered again {device.heard[0][0] - sent:.2f} s after the heartbeat")


def test_the_server_is_back_within_seconds_of_a_broker_restart(tmp_path: Path) -> None:
    broker = Mosquitto(workdir=tmp_path / "mosquitto", persistence=False).start()
    try:
        with Server(broker.url, read_bundle(tiny_bundle())) as server:
            broker.stop(kill=True)
            assert wait_until(lambda: not server.client.is_connected(), timeout=5)
            time.sleep(8)  # paho's own backoff would be at 8-16 s by now
            broker.start()
            started = time.monotonic()
            assert wait_until(server.client.is_connected, timeout=30)
            back_s = time.monotonic() - started
        print(f"the update server was back {back_s:.1f} s after the broker")
        assert back_s <= 3.0
    finally:
        broker.stop()


def test_a_fetch_of_a_window_is_answered_a_chunk_a_message(mosquitto: Mosquitto) -> None:
    """`{off, n, k}`: k messages of n bytes from off, the last cut at the bundle's end; a
    device that sends no `k` gets one; a window past the server's limit gets nothing."""
    with device_on(mosquitto) as device:
        device.subscribe()
        broker = f"mqtt://127.0.0.1:{mosquitto.port}"
        with Server(broker, read_bundle(tiny_bundle())) as server:
            server.offer(DEV, KEY)
            assert wait_until(lambda: len(device.heard) == 1, timeout=5)  # the offer
            oid, size = server.id[:8], len(server.stream)

            def fetch(**ask: int) -> list[tuple[int, int]]:
                device.heard.clear()
                device.client.publish(f"dz/v1/{DEV}/fetch", cbor2.dumps({"id": oid, **ask}))
                time.sleep(0.5)
                chunks = [cbor2.loads(payload) for _, payload in device.heard]
                return [(c["off"], len(c["d"])) for c in chunks]

            assert fetch(off=0, n=16, k=3) == [(0, 16), (16, 16), (32, 16)]
            assert fetch(off=0, n=16) == [(0, 16)]
            last = size - 20
            assert fetch(off=last, n=16, k=4) == [(last, 16), (last + 16, 4)]
            assert fetch(off=0, n=16, k=17) == []
