"""firmware/dzcore/uplink/mqtt.py under the real MicroPython against a broker scripted byte
for byte."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from daozhang.lab.mp.run import run_micropython

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


def drive(
    broker: ScriptedBroker,
    n_publish: int = 0,
    dead_ms: int = 3000,
    keepalive_s: int = 60,
    hold_ms: int = 0,
    linger_ms: int = 0,
) -> list[str]:
    args = [n_publish, dead_ms, keepalive_s, hold_ms, linger_ms]
    result = run_micropython(
        [str(HERE / "mp_drive_mqtt.py"), str(broker.port), *map(str, args)], timeout=60
    )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    return out.splitlines()


def handshake(conn: ScriptedConn, keepalive_s: int = 60) -> None:
    connect = EXPECTED_CONNECT[:10] + keepalive_s.to_bytes(2, "big") + EXPECTED_CONNECT[12:]
    assert conn.packet() == connect
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


def short_handshake(conn: ScriptedConn) -> None:
    """CONNACK to any CONNECT, SUBACK (QoS 1) to any one-topic SUBSCRIBE."""
    assert conn.packet()[0] == 0x10
    conn.send(b"\x20\x02\x00\x00")
    subscribe = conn.packet()
    assert subscribe[0] == 0x82
    conn.send(b"\x90\x03" + subscribe[2:4] + b"\x01")


# How the broker ends session i of the descriptor test: path i % 5.
PATHS = ["refused", "protocol error", "dead link", "disconnect", "broker closes"]


def test_the_socket_is_closed_on_every_path_and_descriptors_stay_flat() -> None:
    sessions = 100
    closed: dict[str, list[bool]] = {path: [] for path in PATHS}

    def script(conn: ScriptedConn) -> None:
        path = PATHS[conn.index % 5]
        if path == "refused":
            conn.packet()
            conn.send(b"\x20\x02\x00\x05")
        else:
            short_handshake(conn)
            if path == "protocol error":
                conn.send(b"\x20\x02\x00\x00")  # a second CONNACK (MQTT-4.8.0-1: close)
            elif path == "disconnect":
                assert conn.packet() == b"\xe0\x00"  # then MQTT-3.14.4-1: close
            elif path == "broker closes":
                return
        # The client closes its end within a second (a dead link: 300 ms of silence first),
        # while its process goes on living: the socket was closed, not left to the exit.
        closed[path].append(conn.closed_within(1.5))

    with ScriptedBroker(script, connections=sessions) as broker:
        result = run_micropython(
            [str(HERE / "mp_drive_sessions.py"), str(broker.port), str(sessions)], timeout=300
        )
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert not broker.errors, broker.errors
    lines = out.splitlines()
    assert sum(line.startswith("SESSION") for line in lines) == sessions, out
    assert "SESSION 0 refused 5" in lines and "SESSION 3 disconnect" in lines, out
    assert any(line.startswith("SESSION 1 ProtocolError") for line in lines), out
    assert any(line.startswith("SESSION 2 LinkDead") for line in lines), out
    for path in PATHS[:4]:
        assert closed[path] and all(closed[path]), (path, closed[path])
    fds = {int(x.split()[1]): int(x.split()[2]) for x in lines if x.startswith("FDS")}
    print("open descriptors after session 1 and", sessions, ":", fds)
    assert fds[sessions - 1] <= fds[0], fds


def test_a_publish_larger_than_the_buffer_is_read_past_pubacked_and_the_session_goes_on() -> None:
    big = publish(b"dz/v1/dev-0001/cmd", bytes(range(256)) * 16, qos=1, pid=9)  # 4 KB
    after = publish(b"dz/v1/dev-0001/ack", b"after-the-big-one")

    def script(conn: ScriptedConn) -> None:
        handshake(conn)
        # In pieces, the last one sharing its segment with the next packet: the client must
        # read exactly to the end of the big one and keep what follows.
        conn.send(big[:700])
        time.sleep(0.1)
        conn.send(big[700:2500])
        time.sleep(0.1)
        conn.send(big[2500:] + after + publish(b"dz/v1/dev-0001/cmd", b"old", 1, 10, True))
        assert conn.packet() == b"\x40\x02\x00\x09"  # PUBACKed, with its id
        assert conn.packet() == b"\x40\x02\x00\x0a"
        time.sleep(0.3)

    with ScriptedBroker(script) as broker:
        lines = drive(broker)
    assert not broker.errors, broker.errors
    assert f"SKIPPED dz/v1/dev-0001/cmd {len(big) - 3}" in lines, lines
    assert "MSG dz/v1/dev-0001/ack after-the-big-one 0" in lines, lines
    # The RETAIN flag reaches the callback: uplink.py does not run a retained command.
    assert "MSG dz/v1/dev-0001/cmd old 1 retained" in lines, lines
    assert not any("ProtocolError" in line for line in lines), lines


def test_pingreq_keeps_its_rhythm_and_an_unanswered_one_ends_the_link() -> None:
    pings: list[float] = []
    ended: list[float] = []

    def script(conn: ScriptedConn) -> None:
        handshake(conn, keepalive_s=1)
        start = time.monotonic()
        conn.sock.settimeout(0.15)
        # Stray bytes every 150 ms, never a PINGRESP: the socket lives, the session not.
        while time.monotonic() - start < 8:
            conn.send(publish(b"dz/v1/dev-0001/ack", b"stray"))
            try:
                data = conn.sock.recv(64)
            except TimeoutError:
                continue
            if not data:
                ended.append(time.monotonic() - start)
                return
            pings.extend([time.monotonic() - start] * data.count(b"\xc0\x00"))

    with ScriptedBroker(script) as broker:
        lines = drive(broker, dead_ms=3000, keepalive_s=1)
    assert not broker.errors, broker.errors
    # One PINGREQ every half keepalive (0.5 s) while the client sends nothing else,
    # answered or not (MQTT-3.1.2-23: a control packet within every keepalive).
    assert len(pings) >= 4, pings
    assert all(b - a < 1.0 for a, b in itertools.pairwise(pings)), pings
    assert any(line.startswith("ERROR LinkDead no PINGRESP") for line in lines), lines
    assert ended and ended[0] < 5, ended
