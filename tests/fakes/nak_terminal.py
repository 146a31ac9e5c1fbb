"""A terminal link that refuses every receipt with one retryable reason (CPython, loopback).

Stands in for the agent in unit tests of the POS simulator's retry and give-up behaviour, e.g.
a journal that stays full because the terminal never gets to upload.
"""

from __future__ import annotations

import socket
import threading

import cbor2
from daozhang.lab.pos.link import FrameDecoder, encode_frame

NAK = b"N"


class NakTerminal:
    def __init__(self, why: str) -> None:
        self.why = why
        self.frames = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> NakTerminal:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return  # closed before the POS connected
        decoder = FrameDecoder()
        with conn:
            while data := conn.recv(4096):
                for kind, payload in decoder.feed(data):
                    msg_id = cbor2.loads(payload).get("id") if kind == b"R" else None
                    self.frames += 1
                    conn.sendall(encode_frame(NAK, cbor2.dumps({"id": msg_id, "why": self.why})))
