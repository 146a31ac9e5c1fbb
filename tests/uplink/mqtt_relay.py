"""A recording TCP relay between the device and a real broker, and the client-side normative
statements of MQTT 3.1.1 checked on the bytes the device sent.

The relay forwards bytes unchanged both ways and keeps, per connection, every chunk with the
time it passed. `violations(session)` parses them into packets afterwards and returns the
statements the device broke (empty when it kept them all). `inject(data)` sends bytes to the
device as if the broker had, to see what it does after a protocol error.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field

from daozhang.ports import free_port


@dataclass
class Session:
    up: list[tuple[float, bytes]] = field(default_factory=list)  # device -> broker
    down: list[tuple[float, bytes]] = field(default_factory=list)  # broker -> device
    device_closed_at: float | None = None
    broker_closed_at: float | None = None
    injected_at: float | None = None
    device: socket.socket | None = None


class RecordingRelay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.sessions: list[Session] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RecordingRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                device, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            broker = socket.create_connection(("127.0.0.1", self.upstream_port))
            session = Session(device=device)
            with self._lock:
                self.sessions.append(session)
            for src, dst, side in ((device, broker, "up"), (broker, device, "down")):
                threading.Thread(
                    target=self._pump, args=(session, src, dst, side), daemon=True
                ).start()

    def _pump(self, session: Session, src: socket.socket, dst: socket.socket, side: str) -> None:
        log = session.up if side == "up" else session.down
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._lock:
                    if side == "up":
                        session.device_closed_at = time.monotonic()
                    else:
                        session.broker_closed_at = time.monotonic()
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            log.append((time.monotonic(), data))
            with contextlib.suppress(OSError):
                dst.sendall(data)

    def inject(self, data: bytes) -> None:
        """Bytes to the device of the latest connection, as if from the broker."""
        session = self.sessions[-1]
        assert session.device is not None
        session.injected_at = time.monotonic()
        session.device.sendall(data)


def packets(chunks: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    """Whole MQTT packets (fixed header included), each with the time its last byte passed."""
    out: list[tuple[float, bytes]] = []
    buf = b""
    for when, data in chunks:
        buf += data
        while len(buf) >= 2:
            n = shift = 0
            pos = 1
            while True:
                if pos >= len(buf):
                    break
                byte = buf[pos]
                n |= (byte & 0x7F) << shift
                shift += 7
                pos += 1
                if not byte & 0x80:
                    break
            else:
                break
            if buf[pos - 1] & 0x80 or len(buf) < pos + n:
                break
            out.append((when, buf[: pos + n]))
            buf = buf[pos + n :]
    return out


def _body(packet: bytes) -> bytes:
    pos = 1
    while packet[pos] & 0x80:
        pos += 1
    return packet[pos + 1 :]


def _str_at(body: bytes, pos: int) -> tuple[bytes, int]:
    n = int.from_bytes(body[pos : pos + 2], "big")
    return body[pos + 2 : pos + 2 + n], pos + 2 + n


def violations(session: Session, keepalive_s: int, close_within_s: float = 2.0) -> list[str]:
    """The MQTT 3.1.1 client-side statements the device broke in this connection."""
    found: list[str] = []
    up = packets(session.up)
    down = packets(session.down)
    if not up or up[0][1][0] != 0x10:
        return ["MQTT-3.1.0-1: the first packet is not CONNECT"]
    body = _body(up[0][1])
    flags = body[7]
    if body[:7] != b"\x00\x04MQTT\x04":
        found.append("MQTT-3.1.2-1/2: protocol name or level")
    if flags & 0x01:
        found.append("MQTT-3.1.2-3: reserved connect flag set")
    will, will_qos, will_retain = flags & 0x04, (flags >> 3) & 3, flags & 0x20
    if not will and (will_qos or will_retain):
        found.append("MQTT-3.1.2-13/15: will QoS or retain without a will")
    if will_qos == 3:
        found.append("MQTT-3.1.2-14: will QoS 3")
    if flags & 0x40 and not flags & 0x80:
        found.append("MQTT-3.1.2-22: password flag without user name flag")
    if int.from_bytes(body[8:10], "big") != keepalive_s:
        found.append("keepalive in CONNECT is not the configured one")
    if any(p[0] == 0x10 for _, p in up[1:]):
        found.append("MQTT-3.1.0-2: a second CONNECT")

    # Keepalive (MQTT-3.1.2-23): never longer than the keepalive without a packet.
    end = session.device_closed_at or time.monotonic()
    times = [t for t, _ in up] + [end]
    for a, b in itertools.pairwise(times):
        if b - a > keepalive_s + 0.5:
            found.append(f"MQTT-3.1.2-23: {b - a:.1f} s without a packet (keepalive {keepalive_s})")
            break

    # DISCONNECT is the last packet, and the device closes right after (MQTT-3.14.4-1/2).
    for i, (when, packet) in enumerate(up):
        if packet[0] == 0xE0:
            if i != len(up) - 1:
                found.append("MQTT-3.14.4-2: packets after DISCONNECT")
            closed = session.device_closed_at
            if closed is None or closed - when > close_within_s:
                found.append("MQTT-3.14.4-1: the connection was not closed after DISCONNECT")

    # After a protocol error from the broker's side, the device closes (MQTT-4.8.0-1).
    if session.injected_at is not None:
        closed = session.device_closed_at
        if closed is None or closed - session.injected_at > close_within_s:
            found.append("MQTT-4.8.0-1: the connection was not closed after a protocol error")

    # Packet ids of QoS 1 PUBLISH: non-zero, not reused while unacknowledged (MQTT-2.3.1-1/2).
    inflight: set[int] = set()
    for packet in sorted(
        [(t, "up", p) for t, p in up] + [(t, "down", p) for t, p in down], key=lambda x: x[0]
    ):
        _, side, raw = packet
        if side == "up" and raw[0] & 0xF0 == 0x30 and (raw[0] >> 1) & 3 == 1:
            b = _body(raw)
            _, pos = _str_at(b, 0)
            pid = int.from_bytes(b[pos : pos + 2], "big")
            if pid == 0:
                found.append("MQTT-2.3.1-1: QoS 1 PUBLISH with packet id 0")
            if pid in inflight:
                found.append(f"MQTT-2.3.1-2: packet id {pid} reused while unacknowledged")
            inflight.add(pid)
        elif side == "down" and raw[0] == 0x40:
            inflight.discard(int.from_bytes(_body(raw)[:2], "big"))
        if side == "up" and raw[0] & 0xF0 == 0x80 and raw[0] != 0x82:
            found.append("MQTT-3.8.1-1: SUBSCRIBE fixed header flags")

    # PUBACK for every QoS 1 PUBLISH received, with its id, in the order received (4.6.0-2).
    received = []
    for _, raw in down:
        if raw[0] & 0xF0 == 0x30 and (raw[0] >> 1) & 3 == 1:
            b = _body(raw)
            _, pos = _str_at(b, 0)
            received.append(int.from_bytes(b[pos : pos + 2], "big"))
    pubacks = [int.from_bytes(_body(raw)[:2], "big") for _, raw in up if raw[0] == 0x40]
    if pubacks != received[: len(pubacks)]:
        found.append(f"MQTT-4.6.0-2: PUBACKs {pubacks} for PUBLISHes {received}")
    elif len(pubacks) < len(received) and session.injected_at is None:
        found.append(f"MQTT-4.3.2-2: PUBLISH ids {received[len(pubacks) :]} never PUBACKed")
    return found


def retain_flags(session: Session, topic: bytes) -> list[tuple[bytes, bool]]:
    """(payload prefix, RETAIN) of each PUBLISH the broker sent to the device on `topic`."""
    out = []
    for _, raw in packets(session.down):
        if raw[0] & 0xF0 != 0x30:
            continue
        b = _body(raw)
        name, pos = _str_at(b, 0)
        if name != topic:
            continue
        if (raw[0] >> 1) & 3:
            pos += 2
        out.append((b[pos : pos + 16], bool(raw[0] & 1)))
    return out
