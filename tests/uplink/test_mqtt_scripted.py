"""firmware/mqtt.py under the real MicroPython against a broker scripted byte for byte."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from daozhang.mp.run import run_micropython

from tests.uplink.scripted_broker import ScriptedBroker, ScriptedConn, mqtt_str, publish

HERE = Path(__file__).parent
DEV = b"dev-0001"
STATUS = b"dz/v1/dev-0001/status"

# CONNECT exactly as DESIGN §1.3 wants it: client id = device, persistent session (clean=0),
# keepalive 60 s, will = "offline" retained at QoS 1 on the status topic.
EXPECTED_CONNECT = (
    b"\x10"
    + bytes([10 + 2 + len(DEV) + 2 + len(STATUS) + 2 + 7])
    + b"\x00\x04MQTT\x04"
    + bytes([0x04 | 0x08 | 0x20])
    + b"\x00\x3c"
    + mqtt_str(DEV)
    + mqtt_str(STATUS)
    + mqtt_str(b"offline")
)
EXPECTED_SUBSCRIBE = (
    b"\x82\x2c\x00\x01"
    + mqtt_str(b"dz/v1/dev-0001/ack")
    + b"\x00"
    + mqtt_str(b"dz/v1/dev-0001/cmd")
    + b"\x01"
)


def drive(broker: ScriptedBroker, n_publish: int = 0, dead_ms: int = 3000) -> list[str]:
    result = run_micropython(
        [str(HERE / "mp_drive_mqtt.py"), str(broker.port), str(n_publish), str(dead_ms)],
        timeout=60,
    )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    return out.splitlines()


def handshake(conn: ScriptedConn) -> None:
    assert conn.packet() == EXPECTED_CONNECT
    conn.send(b"\x20\x02\x00\x00")
    assert conn.packet() == EXPECTED_SUBSCRIBE
    conn.send(b"\x90\x04\x00\x01\x00\x01")
    # The retained "online" status, QoS 1, packet id 2.
    assert (
        conn.packet()
        == b"\x33" + bytes([2 + len(STATUS) + 2 + 6]) + mqtt_str(STATUS) + b"\x00\x02online"
    )


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5])
def test_refused_connack_codes_are_reported_by_code(code: int) -> None:
    def script(conn: ScriptedConn) -> None:
        assert conn.packet() == EXPECTED_CONNECT
        conn.send(bytes([0x20, 2, 0, code]))

    with ScriptedBroker(script) as broker:
        lines = drive(broker)
    assert not broker.errors, broker.errors
    assert f"REFUSED {code}" in lines, lines
    assert "CONNACK 0" not in lines


def test_connack_split_over_reads_and_session_present() -> None:
    def script(conn: ScriptedConn) -> None:
        assert conn.packet() == EXPECTED_CONNECT
        conn.send(b"\x20")  # partial read: the client must wait for the rest
        time.sleep(0.2)
        conn.send(b"\x02\x01")
        time.sleep(0.2)
        conn.send(b"\x00")
        assert conn.packet() == EXPECTED_SUBSCRIBE
        conn.send(b"\x90\x04\x00\x01\x00\x01")
        conn.packet()
        conn.sock.close()

    with ScriptedBroker(script) as broker:
        lines = drive(broker)
    assert not broker.errors, broker.errors
    assert "CONNACK 1" in lines
    assert "SUBACK" in lines


def test_broker_that_never_pubacks_nor_answers_is_found_dead_by_silence() -> None:
    seen: list[bytes] = []

    def script(conn: ScriptedConn) -> None:
        handshake(conn)
        # Read whatever the client sends (publishes, pings) and answer nothing: half-open.
        conn.sock.settimeout(10)
        try:
            while True:
                seen.append(conn.packet())
        except EOFError:
            pass

    with ScriptedBroker(script) as broker:
        lines = drive(broker, n_publish=3, dead_ms=1500)
    assert not broker.errors, broker.errors
    assert [line for line in lines if line.startswith("SENT")] == ["SENT 3", "SENT 4", "SENT 5"]
    assert not any(line.startswith("PUBACK") for line in lines)
    assert any(line.startswith("ERROR LinkDead no byte received") for line in lines), lines
    # The client pinged before it gave up, and closed the socket (the broker saw EOF).
    assert b"\xc0\x00" in seen


def test_broker_that_never_pubacks_but_pings_keeps_the_link() -> None:
    def script(conn: ScriptedConn) -> None:
        handshake(conn)
        for _ in range(3):
            assert conn.packet()[0] == 0x32  # the publishes; never PUBACKed
        deadline = time.monotonic() + 2.0
        pings = 0
        while time.monotonic() < deadline:
            assert conn.packet() == b"\xc0\x00"
            conn.send(b"\xd0\x00")
            pings += 1
        # The collector's ack still arrives: PUBACK was never needed to carry on.
        conn.send(publish(b"dz/v1/dev-0001/ack", b"ack-after-%d-pings" % pings))
        time.sleep(0.3)

    with ScriptedBroker(script) as broker:
        lines = drive(broker, n_publish=3, dead_ms=600)
    assert not broker.errors, broker.errors
    assert not any(line.startswith("PUBACK") for line in lines)
    msgs = [line for line in lines if line.startswith("MSG dz/v1/dev-0001/ack ack-after-")]
    assert msgs, lines
    assert int(msgs[0].split("-")[-2]) >= 3  # the link lived through several dead-times
    # It ends when the broker closes (EOF, or a reset if a ping crossed the close), not dead.
    assert not any("LinkDead" in line for line in lines), lines


def test_disconnect_mid_packet_delivers_nothing_partial() -> None:
    def script(conn: ScriptedConn) -> None:
        handshake(conn)
        whole = publish(b"dz/v1/dev-0001/ack", b"complete")
        cut = publish(b"dz/v1/dev-0001/ack", b"never-seen")
        conn.send(whole + cut[: len(cut) // 2])
        time.sleep(0.2)

    with ScriptedBroker(script) as broker:
        lines = drive(broker)
    assert not broker.errors, broker.errors
    assert "MSG dz/v1/dev-0001/ack complete 0" in lines
    assert not any("never-seen" in line for line in lines)
    assert "ERROR MQTTError connection closed by the broker" in lines


def test_out_of_order_pubacks_and_coalesced_packets() -> None:
    def script(conn: ScriptedConn) -> None:
        handshake(conn)
        for _ in range(3):
            conn.packet()
        # Three PUBACKs out of order and a QoS 1 command, all in one TCP segment.
        conn.send(
            b"\x40\x02\x00\x05\x40\x02\x00\x03"
            + publish(b"dz/v1/dev-0001/cmd", b"report", qos=1, pid=77)
            + b"\x40\x02\x00\x04"
        )
        # The client answers the command's PUBACK with the same packet id.
        assert conn.packet() == b"\x40\x02\x00\x4d"

    with ScriptedBroker(script) as broker:
        lines = drive(broker, n_publish=3)
    assert not broker.errors, broker.errors
    acks = [line for line in lines if line.startswith(("PUBACK", "MSG"))]
    assert acks == ["PUBACK 5", "PUBACK 3", "MSG dz/v1/dev-0001/cmd report 1", "PUBACK 4"], lines


def test_garbage_from_the_broker_is_a_protocol_error() -> None:
    def script(conn: ScriptedConn) -> None:
        handshake(conn)
        conn.send(b"\x20\x02\x00\x00")  # a second CONNACK mid-session
        time.sleep(0.3)

    with ScriptedBroker(script) as broker:
        lines = drive(broker)
    assert any(line.startswith("ERROR ProtocolError unexpected packet 0x20") for line in lines)
