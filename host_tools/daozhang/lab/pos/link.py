"""The host end of the terminal link: frames over a serial port, a TCP socket or a pty.

Frame: STX | type | len (u16 BE) | CBOR payload | crc32 (u32 BE over type, len, payload).
"""

from __future__ import annotations

import binascii
import os
import select
import socket
import struct
import time
from typing import Any

import cbor2

from daozhang.errors import UsageError

STX = 0x02
MAX_PAYLOAD = 1024


class LinkClosed(Exception):
    """The other end went away (board power-cut, reset, cable pulled)."""


def encode_frame(kind: bytes, payload: bytes) -> bytes:
    head = bytes([STX]) + kind + struct.pack(">H", len(payload))
    crc = binascii.crc32(payload, binascii.crc32(head[1:]))
    return head + payload + struct.pack(">I", crc)


class FrameDecoder:
    """Splits a byte stream into frames; bad frames are reported as ("!", reason)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buf += data
        out: list[tuple[bytes, bytes]] = []
        while True:
            start = self.buf.find(bytes([STX]))
            if start < 0:
                self.buf.clear()
                return out
            del self.buf[:start]
            if len(self.buf) < 4:
                return out
            size = struct.unpack_from(">H", self.buf, 2)[0]
            if size > MAX_PAYLOAD:
                del self.buf[:1]
                out.append((b"!", b"len"))
                continue
            if len(self.buf) < 4 + size + 4:
                return out
            payload = bytes(self.buf[4 : 4 + size])
            crc = struct.unpack_from(">I", self.buf, 4 + size)[0]
            kind = bytes(self.buf[1:2])
            if binascii.crc32(payload, binascii.crc32(bytes(self.buf[1:4]))) != crc:
                del self.buf[:1]
                out.append((b"!", b"crc"))
                continue
            del self.buf[: 8 + size]
            out.append((kind, payload))


class TerminalLink:
    """A connection to the agent's terminal link.

    `port` is `tcp:HOST:PORT` (the virtual board), or a serial device / pty path.
    """

    def __init__(self, port: str, baudrate: int = 115200) -> None:
        self.port = port
        self.baudrate = baudrate
        self._sock: socket.socket | None = None
        self._fd: int | None = None
        self._serial: Any = None
        self._decoder = FrameDecoder()
        self._pending: list[tuple[bytes, bytes]] = []

    def open(self, timeout_s: float = 5.0) -> None:
        self.close()
        self._decoder = FrameDecoder()
        self._pending = []
        if self.port.startswith("tcp:"):
            host, _, port = self.port[4:].rpartition(":")
            try:
                self._sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout_s)
            except ValueError:
                raise UsageError(f"--port {self.port!r}: expected tcp:HOST:PORT") from None
            except OSError as exc:
                raise LinkClosed(f"cannot connect to {self.port}: {exc}") from None
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return
        if not os.path.exists(self.port):
            raise UsageError(f"--port {self.port!r}: no such device or pty")
        try:
            import serial  # pyserial (an mpremote dependency)

            self._serial = serial.Serial(self.port, self.baudrate, timeout=0)
        except (ImportError, OSError, ValueError) as exc:
            raise LinkClosed(f"cannot open {self.port}: {exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._serial is not None:
            self._serial.close()
            self._serial = None

    @property
    def is_open(self) -> bool:
        return self._sock is not None or self._serial is not None

    def send(self, kind: bytes, message: dict[str, Any]) -> None:
        self.send_raw(encode_frame(kind, cbor2.dumps(message)))

    def send_raw(self, data: bytes) -> None:
        try:
            if self._sock is not None:
                self._sock.sendall(data)
            elif self._serial is not None:
                self._serial.write(data)
            else:
                raise LinkClosed("link not open")
        except OSError as exc:
            self.close()
            raise LinkClosed(str(exc)) from None

    def receive(self, timeout_s: float) -> tuple[bytes, dict[str, Any] | bytes] | None:
        """The next reply frame: (kind, decoded map) or (b"!", reason); None on timeout."""
        deadline = time.monotonic() + timeout_s
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self._read(left)
            if data is None:
                continue
            self._pending.extend(self._decoder.feed(data))
        kind, payload = self._pending.pop(0)
        if kind == b"!":
            return kind, payload
        try:
            message = cbor2.loads(payload)
        except (cbor2.CBORDecodeError, ValueError):
            return b"!", b"cbor"
        return kind, message if isinstance(message, dict) else {}

    def _read(self, timeout_s: float) -> bytes | None:
        if self._sock is not None:
            ready, _, _ = select.select([self._sock], [], [], timeout_s)
            if not ready:
                return None
            try:
                data = self._sock.recv(4096)
            except OSError as exc:
                self.close()
                raise LinkClosed(str(exc)) from None
            if not data:
                self.close()
                raise LinkClosed("closed by the board")
            return data
        if self._serial is not None:
            self._serial.timeout = timeout_s
            try:
                # read(n) waits for all n bytes: one byte (or the timeout), then what is there.
                data = self._serial.read(1)
                if data:
                    data += self._serial.read(self._serial.in_waiting)
            except OSError as exc:
                self.close()
                raise LinkClosed(str(exc)) from None
            return bytes(data) or None
        raise LinkClosed("link not open")
