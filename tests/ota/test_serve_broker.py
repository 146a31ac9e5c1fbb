"""The update server against the real Mosquitto (daozhang.ota.serve): an offer nobody answered
is made again even when the rollout waits in short slices, and at once when the device's
heartbeat shows it never got it; the server is back within seconds of a broker restart (all
found by the fleet update through faults, tests/ota/fleet_update.py)."""

from __future__ import annotations

import hashlib
import struct
import threading
import time
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


def test_an_unanswered_offer_is_made_again_between_short_waits(mosquitto: Mosquitto) -> None:
    offers: list[bytes] = []
    subscribed = threading.Event()
    device = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    device.on_message = lambda c, u, msg: offers.append(msg.payload)
    device.on_subscribe = lambda *a: subscribed.set()
    device.connect("127.0.0.1", mosquitto.port)
    device.loop_start()
    try:
        device.subscribe(f"dz/v1/{DEV}/ota", qos=1)
        assert subscribed.wait(5)
        broker = f"mqtt://127.0.0.1:{mosquitto.port}"
        with Server(broker, read_bundle(tiny_bundle()), reoffer_s=1.0) as server:
            server.offer(DEV, KEY)
            # As `rollout.drive` waits: slices of less than the re-offer time.
            end = time.monotonic() + 3.5
            while time.monotonic() < end:
                server.wait(0.5)
        assert wait_until(lambda: len(offers) >= 3, timeout=2), len(offers)
    finally:
        device.loop_stop()
        device.disconnect()


def test_a_heartbeat_without_the_offer_brings_it_again_at_once(mosquitto: Mosquitto) -> None:
    offers: list[float] = []
    subscribed = threading.Event()
    device = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    device.on_message = lambda c, u, msg: offers.append(time.monotonic())
    device.on_subscribe = lambda *a: subscribed.set()
    device.connect("127.0.0.1", mosquitto.port)
    device.loop_start()
    try:
        broker = f"mqtt://127.0.0.1:{mosquitto.port}"
        with Server(broker, read_bundle(tiny_bundle())) as server:  # re-offers after 30 s
            server.offer(DEV, KEY)  # lost: the device is not subscribed yet
            time.sleep(0.5)  # gone through the broker before the device subscribes
            device.subscribe(f"dz/v1/{DEV}/ota", qos=1)
            assert subscribed.wait(5)
            heartbeat = cbor2.dumps({"v": 1, "dev": DEV, "fw": "0.1.0"})
            device.publish(f"dz/v1/{DEV}/hb", heartbeat)  # too soon after the offer: nothing
            time.sleep(LOST_AFTER_S + 0.5)
            assert offers == []
            device.publish(f"dz/v1/{DEV}/hb", heartbeat)
            sent = time.monotonic()
            assert wait_until(lambda: len(offers) == 1, timeout=5)
            server.wait(0.5)
        print(f"offered again {offers[0] - sent:.2f} s after the heartbeat")
    finally:
        device.loop_stop()
        device.disconnect()


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
    chunks: list[dict[str, object]] = []
    subscribed = threading.Event()
    device = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    device.on_message = lambda c, u, msg: chunks.append(cbor2.loads(msg.payload))
    device.on_subscribe = lambda *a: subscribed.set()
    device.connect("127.0.0.1", mosquitto.port)
    device.loop_start()
    try:
        device.subscribe(f"dz/v1/{DEV}/ota", qos=1)
        assert subscribed.wait(5)
        broker = f"mqtt://127.0.0.1:{mosquitto.port}"
        with Server(broker, read_bundle(tiny_bundle())) as server:
            server.offer(DEV, KEY)
            assert wait_until(lambda: len(chunks) == 1, timeout=5)  # the offer
            oid, size = server.id[:8], len(server.stream)

            def fetch(**ask: int) -> list[tuple[object, int]]:
                chunks.clear()
                device.publish(f"dz/v1/{DEV}/fetch", cbor2.dumps({"id": oid, **ask}), qos=0)
                time.sleep(0.5)
                return [(c["off"], len(c["d"])) for c in chunks]  # type: ignore[arg-type]

            assert fetch(off=0, n=16, k=3) == [(0, 16), (16, 16), (32, 16)]
            assert fetch(off=0, n=16) == [(0, 16)]
            last = size - 20
            assert fetch(off=last, n=16, k=4) == [(last, 16), (last + 16, 4)]
            assert fetch(off=0, n=16, k=17) == []
    finally:
        device.loop_stop()
        device.disconnect()
