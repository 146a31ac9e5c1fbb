"""firmware/dzcore/uplink/mqtt.py under the real MicroPython against the real Mosquitto,
watched by paho."""

from __future__ import annotations

import os
import queue
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as paho
from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.mp.run import micropython_argv, module_path

HERE = Path(__file__).parent


def watcher(
    port: int, topics: list[str]
) -> tuple[paho.Client, queue.Queue[tuple[str, bytes, bool]]]:
    seen: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="watcher")
    client.on_message = lambda _c, _u, m: seen.put((m.topic, m.payload, bool(m.retain)))
    client.connect("127.0.0.1", port)
    for topic in topics:
        client.subscribe(topic, qos=1)
    client.loop_start()
    return client, seen


def wait_for(seen: queue.Queue[tuple[str, bytes, bool]], want: tuple[str, bytes]) -> bool:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            topic, payload, _retain = seen.get(timeout=0.5)
        except queue.Empty:
            continue
        if (topic, payload) == want:
            return True
    return False


def test_publish_subscribe_status_and_will_with_mosquitto(mosquitto: Mosquitto) -> None:
    client, seen = watcher(mosquitto.port, ["dz/v1/dev-0001/#"])
    env = {**os.environ, "MICROPYPATH": module_path("virtual")}
    device = subprocess.Popen(
        [*micropython_argv(), str(HERE / "mp_drive_mqtt.py"), str(mosquitto.port), "2", "60000"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(seen, ("dz/v1/dev-0001/status", b"online"))
        assert wait_for(seen, ("dz/v1/dev-0001/up", b"batch-1"))
        # Messages to the device on its ack (QoS 0) and cmd (QoS 1) topics reach it.
        client.publish("dz/v1/dev-0001/ack", b"ack-1", qos=0)
        client.publish("dz/v1/dev-0001/cmd", b"report", qos=1)
        time.sleep(1.0)
        device.kill()  # a power cut: the broker must publish the will
        out = device.communicate(timeout=10)[0].decode()
        assert wait_for(seen, ("dz/v1/dev-0001/status", b"offline")), out
        for line in ("CONNACK 0", "SUBACK", "PUBACK 3", "PUBACK 4"):
            assert line in out.splitlines(), out
        assert "MSG dz/v1/dev-0001/ack ack-1 0" in out
        assert "MSG dz/v1/dev-0001/cmd report 1" in out
    finally:
        if device.poll() is None:
            device.kill()
            device.wait()
        client.loop_stop()
        client.disconnect()
    # The offline status is retained: a late subscriber sees it at once.
    late, late_seen = watcher(mosquitto.port, ["dz/v1/dev-0001/status"])
    try:
        topic, payload, retained = late_seen.get(timeout=10)
        assert (topic, payload, retained) == ("dz/v1/dev-0001/status", b"offline", True)
    finally:
        late.loop_stop()
        late.disconnect()


def test_the_brokers_size_limit_passes_a_full_batch_and_refuses_more(mosquitto: Mosquitto) -> None:
    """`max_packet_size` in the project's broker config: an 8 KB batch with its MAC goes
    through; a publisher of anything much larger is dropped and delivers nothing."""
    client, seen = watcher(mosquitto.port, ["dz/v1/dev-0001/up"])
    try:
        sender = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="dev-0001")
        sender.connect("127.0.0.1", mosquitto.port)
        sender.loop_start()
        full = b"\xa6" * (8192 + 32)
        sender.publish("dz/v1/dev-0001/up", full, qos=1).wait_for_publish(timeout=10)
        assert wait_for(seen, ("dz/v1/dev-0001/up", full))
        sender.publish("dz/v1/dev-0001/up", b"x" * 65536, qos=1)
        time.sleep(1.0)
        sender.loop_stop()
        assert seen.empty()
    finally:
        client.loop_stop()
        client.disconnect()
