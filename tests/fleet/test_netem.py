"""netem mode's namespaces, for real (root only: ip netns, veth and tc need it)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
from daozhang.lab.fleet.netem import Namespace, NetemUnavailable, preflight

pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.skipif(os.geteuid() != 0, reason="netem mode needs root (ip netns, veth, tc)"),
]


def kernel_has_netem() -> bool:
    try:
        preflight(need_netem=True)
    except NetemUnavailable:
        return False
    return True


@pytest.fixture
def ns() -> Iterator[Namespace]:
    space = Namespace.for_board(str(os.getpid() % 100000), 7).create()
    try:
        yield space
    finally:
        space.delete()


def test_a_board_namespace_reaches_only_its_host_end(ns: Namespace) -> None:
    with socket.socket() as server:
        server.bind((ns.host_ip, 0))
        server.listen()
        port = server.getsockname()[1]
        accepted: list[bytes] = []

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                accepted.append(conn.recv(16))

        thread = threading.Thread(target=serve)
        thread.start()

        def talk() -> str:
            with socket.create_connection((ns.host_ip, port), timeout=5) as client:
                client.sendall(b"hello")
                return client.getsockname()[0]

        assert ns.call(talk) == ns.board_ip  # the connection came from inside the namespace
        thread.join(timeout=5)
        assert accepted == [b"hello"]

    def loopback_of_host() -> None:
        # The host's 127.0.0.1 is not the namespace's: nothing listens there.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass

    with pytest.raises(OSError):
        ns.call(loopback_of_host)


def test_shaping_is_applied_on_both_ends(ns: Namespace) -> None:
    ns.shape(kbps=50)
    assert "tbf" in ns.qdiscs() and "50Kbit" in ns.qdiscs()
    ns.shape()
    assert "tbf" not in ns.qdiscs()
    if kernel_has_netem():
        ns.shape(delay_ms=300, jitter_ms=50, loss_pct=2)
        assert "netem" in ns.qdiscs() and "delay 300ms" in ns.qdiscs()
    else:
        # This kernel lacks sch_netem (the sandbox's does): the error must say so plainly.
        with pytest.raises(NetemUnavailable, match=r"no netem qdisc \(sch_netem\)"):
            preflight(need_netem=True)


def test_delete_removes_namespace_and_veth(ns: Namespace) -> None:
    assert ns.exists()
    ns.delete()
    assert not ns.exists()
    assert ns.host_veth not in os.popen("ip -o link").read()
    ns.delete()  # idempotent
