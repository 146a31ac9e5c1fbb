"""The device's MQTT client (firmware/mqtt.py under the real MicroPython) against two
independent brokers, Mosquitto and amqtt (pure Python, from PyPI: a second reading of the
standard), through a relay that records what the device sent and checks the client-side
statements of MQTT 3.1.1 on those bytes (tests/uplink/mqtt_relay.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from daozhang.broker.mosquitto import Mosquitto
from daozhang.lab.mp.run import micropython_argv, module_path
from daozhang.ports import free_port, wait_listening

from tests.uplink.mqtt_relay import RecordingRelay, retain_flags, violations

HERE = Path(__file__).parent
CMD = "dz/v1/dev-0001/cmd"
KEEPALIVE_S = 1


@pytest.fixture(params=["mosquitto", "amqtt"])
def broker_port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    if request.param == "mosquitto":
        broker = Mosquitto(workdir=tmp_path / "mosquitto").start()
        try:
            yield broker.port
        finally:
            broker.stop()
        return
    port = free_port()
    conf = tmp_path / "amqtt.yaml"
    conf.write_text(
        "listeners:\n"
        "  default:\n"
        "    type: tcp\n"
        f"    bind: 127.0.0.1:{port}\n"
        "plugins:\n"
        "  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n"
    )
    log = (tmp_path / "amqtt.log").open("wb")
    amqtt = Path(sys.executable).parent / "amqtt"
    process = subprocess.Popen([str(amqtt), "-c", str(conf)], stdout=log, stderr=log)
    try:
        assert wait_listening(port), (tmp_path / "amqtt.log").read_text()
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def collector(port: int) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="interop-collector")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def device(port: int, hold_ms: int) -> subprocess.Popen[bytes]:
    # One session: connect (persistent), subscribe, 2 QoS 1 publishes, read for hold_ms with
    # keepalive 1 s, DISCONNECT, then live on for a second after close().
    env = {**os.environ, "MICROPYPATH": module_path("virtual")}
    args = [port, 2, 60000, KEEPALIVE_S, hold_ms, 1000]
    return subprocess.Popen(
        [*micropython_argv(), str(HERE / "mp_drive_mqtt.py"), *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish(proc: subprocess.Popen[bytes]) -> list[str]:
    out = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 0, out
    return out.splitlines()


def wait_line(proc: subprocess.Popen[bytes], want: str) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if line.strip() == want:
            return
        assert line, f"device ended before {want!r}"
    raise AssertionError(f"no {want!r}")


def test_device_client_keeps_mqtt_311_with_both_brokers(
    broker_port: int, request: pytest.FixtureRequest
) -> None:
    broker_name = request.node.callspec.params["broker_port"]
    col = collector(broker_port)
    try:
        # A retained command from before: the broker replays it on every SUBSCRIBE.
        col.publish(CMD, b"retained-cmd", qos=1, retain=True).wait_for_publish(timeout=10)
        with RecordingRelay(broker_port) as relay:
            first = device(relay.port, hold_ms=3500)
            wait_line(first, "SUBACK")
            time.sleep(0.3)
            # Live, while subscribed: a small command, a 4 KB one (past the client's
            # 1 KB buffer), then an ack that must still arrive.
            col.publish(CMD, b"live-cmd", qos=1, retain=True).wait_for_publish(timeout=10)
            col.publish(CMD, b"\x00" * 4096, qos=1).wait_for_publish(timeout=10)
            col.publish("dz/v1/dev-0001/ack", b"ack-after-big", qos=0)
            lines = finish(first)
            # While the device is away: a retained command, queued in its session.
            col.publish(CMD, b"queued-cmd", qos=1, retain=True).wait_for_publish(timeout=10)
            col.publish(CMD, b"queued-plain", qos=1).wait_for_publish(timeout=10)
            # Reconnect with the same persistent session.
            second = device(relay.port, hold_ms=1500)
            wait_line(second, "SUBACK")
            time.sleep(0.3)
            relay.inject(b"\x20\x02\x00\x00")  # a second CONNACK: a protocol error
            lines2 = finish(second)
            sessions = list(relay.sessions)
            time.sleep(0.2)
    finally:
        col.publish(CMD, b"", qos=1, retain=True)  # clear the retained command
        col.loop_stop()
        col.disconnect()

    assert "SKIPPED dz/v1/dev-0001/cmd 4118" in lines, lines
    assert "MSG dz/v1/dev-0001/ack ack-after-big 0" in lines, lines
    assert "DISCONNECTED" in lines, lines
    assert any(line.startswith("ERROR ProtocolError") for line in lines2), "\n".join(lines2)
    assert len(sessions) == 2
    for session in sessions:
        assert violations(session, KEEPALIVE_S) == []
    # PINGREQ while idle: the first session held 3.5 s with keepalive 1 s.
    assert sum(raw == b"\xc0\x00" for _, raw in sessions[0].up) >= 3

    # What the agent relies on to run a command once: a retained message replayed for a
    # SUBSCRIBE comes with RETAIN set (MQTT-3.3.1-8), a live one with RETAIN clear
    # (MQTT-3.3.1-9). Both brokers do so (see the relay's record for each).
    first_cmds = retain_flags(sessions[0], CMD.encode())
    assert first_cmds[0] == (b"retained-cmd", True), first_cmds
    assert (b"live-cmd", False) in first_cmds, first_cmds
    second_cmds = retain_flags(sessions[1], CMD.encode())
    # The replay for the second SUBSCRIBE: RETAIN set with both, so it is not run again.
    assert second_cmds[-1] == (b"queued-cmd", True), second_cmds
    # Where they differ: what was published while the device was away (persistent session,
    # QoS 1). Mosquitto queues it and delivers it with RETAIN clear (run once); amqtt 0.12
    # delivers neither the plain nor the retained one from the session, only the retained
    # replay (RETAIN set: not run). The agent relies on Mosquitto's behaviour for commands
    # sent while a device is offline; acks need no queue (the uploader resends from acked + 1
    # after a reconnect, and the collector acks again).
    queued = second_cmds[:-1]
    if broker_name == "mosquitto":
        assert queued == [(b"queued-cmd", False), (b"queued-plain", False)], second_cmds
    else:
        assert queued == [], second_cmds
    assert "MSG dz/v1/dev-0001/cmd live-cmd 1" in lines, lines
