"""A broker played byte for byte by a test: one loopback listener, one client at a time."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from daozhang.ports import free_port


class ScriptedBroker:
    """Runs `script(conn)` in a thread for each of `connections` accepted one after another."""

    def __init__(self, script: Callable[[ScriptedConn], None], connections: int = 1) -> None:
        self.port = free_port()
        self.script = script
        self.connections = connections
        self.errors: list[BaseException] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(30)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ScriptedBroker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        self._thread.join(timeout=30)

    def _serve(self) -> None:
        for index in range(self.connections):
            try:
                sock, _ = self._server.accept()
            except OSError as exc:
                self.errors.append(exc)
                return
            with sock:
                sock.settimeout(20)
                try:
                    self.script(ScriptedConn(sock, index))
                except BaseException as exc:  # reported by the test, never swallowed
                    self.errors.append(exc)
                    return


class ScriptedConn:
    def __init__(self, sock: socket.socket, index: int = 0) -> None:
        self.sock = sock
        self.index = index  # which connection of the broker's this is, from 0

    def recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError(f"client closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def packet(self) -> bytes:
        """One whole MQTT packet as sent (fixed header included)."""
        first = self.recv_exact(1)
        length = b""
        n = shift = 0
        while True:
            byte = self.recv_exact(1)
            length += byte
            n |= (byte[0] & 0x7F) << shift
            shift += 7
            if not byte[0] & 0x80:
                break
        return first + length + self.recv_exact(n)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed_within(self, seconds: float) -> bool:
        """True when the client closes its end within `seconds` (bytes it sends are read
        and dropped); False when it still holds the connection open."""
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(4096):
                pass
        except TimeoutError:
            return False
        except ConnectionResetError:
            pass
        return True


def mqtt_str(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(
    topic: bytes, payload: bytes, qos: int = 0, pid: int = 0, retain: bool = False
) -> bytes:
    body = mqtt_str(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
    return bytes([0x30 | (qos << 1) | int(retain)]) + remaining_length(len(body)) + body
