"""daozhang.lab.faults.proxy against a loopback echo server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from daozhang.lab.faults.proxy import FaultProxy


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(4096):
                    conn.sendall(data)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    server.close()


def test_blackhole_holds_bytes_and_the_stream_resumes_intact(echo_port: int) -> None:
    with FaultProxy("127.0.0.1", echo_port) as proxy:
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        conn.sendall(b"hello")
        assert conn.recv(100) == b"hello"
        proxy.blackhole(True)
        time.sleep(0.1)
        conn.sendall(b"held")
        with pytest.raises(socket.timeout):
            conn.recv(100)  # half-open: no error, no bytes
        proxy.blackhole(False)
        assert conn.recv(100) == b"held"
        conn.close()


def test_reset_and_refuse(echo_port: int) -> None:
    with FaultProxy("127.0.0.1", echo_port) as proxy:
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        conn.sendall(b"x")
        assert conn.recv(10) == b"x"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            conn.recv(10)
        proxy.refuse(True)
        # The reset may beat connect() back to a busy client: refused either way.
        with pytest.raises(ConnectionResetError):
            other = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
            other.sendall(b"y")
            other.recv(10)
        proxy.refuse(False)
        assert proxy.stats.resets == 1


def test_shaping_keeps_order_and_counts_bytes(echo_port: int) -> None:
    with FaultProxy("127.0.0.1", echo_port) as proxy:
        proxy.shape(delay_ms=30, up_bps=200_000, down_bps=200_000)
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        payload = bytes(range(256)) * 200
        conn.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += conn.recv(65536)
        assert got == payload
        conn.close()
        assert proxy.stats.bytes_up == len(payload)


def test_flap_alternates_blackholes_until_stopped(echo_port: int) -> None:
    with FaultProxy("127.0.0.1", echo_port) as proxy:
        proxy.flap(up_s=0.2, down_s=0.2)
        time.sleep(1.3)
        proxy.flap(None)
        time.sleep(0.1)
        events = [e for _, e in proxy.stats.events]
        assert events.count("blackhole") >= 2
        assert events[-1] == "link back"  # stopping flapping leaves the link up
        conn = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        conn.sendall(b"after")
        assert conn.recv(10) == b"after"
        conn.close()
