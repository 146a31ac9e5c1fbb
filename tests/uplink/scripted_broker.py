"""A broker played byte for byte by a test: one loopback listener, one client at a time."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from daozhang.services.ports import free_port


class ScriptedBroker:
    """Runs `script(conn)` in a thread for each accepted connection (usually one)."""

    def __init__(self, script: Callable[[ScriptedConn], None]) -> None:
        self.port = free_port()
        self.script = script
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
        try:
            sock, _ = self._server.accept()
        except OSError as exc:
            self.errors.append(exc)
            return
        with sock:
            sock.settimeout(20)
            try:
                self.script(ScriptedConn(sock))
            except BaseException as exc:  # reported by the test, never swallowed
                self.errors.append(exc)


class ScriptedConn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

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


def mqtt_str(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def publish(topic: bytes, payload: bytes, qos: int = 0, pid: int = 0) -> bytes:
    body = mqtt_str(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
    assert len(body) < 128
    return bytes([0x30 | (qos << 1), len(body)]) + body
