# The download's chunk requests (dzcore/ota/fetch.py): a chunk asked just before the link
# dropped is asked again as soon as a new session is up, not after the whole 8 s wait; a
# window of chunks is one request, answered by one message a chunk.
import asyncio
import time

from dzcore import cbor
from dzcore.ota.fetch import Updater
from mptest import check, equal


class _Slots:
    root = "/tmp/unused-ota"


def _answer(up, off, data):
    up.on_message(cbor.encode({"op": "chunk", "id": up.offer["id"][:8], "off": off, "d": data}))


def _updater():
    up = Updater(_Slots(), None, "virtual", "0.1.0", 6, {"ota_gap_ms": 0})
    up.offer = {"id": bytes(32), "msize": 4, "size": 4, "mac": b""}
    up.online = lambda: True
    return up


def test_a_chunk_lost_with_the_session_is_asked_again_at_once():
    up = _updater()
    sessions = [1]
    asks = []
    up.sessions = lambda: sessions[0]

    async def send(leaf, payload):
        asks.append(time.ticks_ms())
        if len(asks) == 1:
            sessions[0] += 1  # the link dropped and came back: the question is gone
        else:
            _answer(up, 0, b"abcd")  # the host answers this one

    up.send = send
    start = time.ticks_ms()
    data = asyncio.run(up._fetch(0, 4, 4))
    took = time.ticks_diff(time.ticks_ms(), start)
    equal(data, b"abcd", "chunk")
    equal(len(asks), 2, "asks")
    check(took < 1000, "asked again after %d ms (the whole wait is 8000)" % took)


def test_a_window_of_chunks_is_one_request_and_the_short_last_chunk_is_asked_alone():
    up = _updater()
    up.window = 3
    up.sessions = lambda: 1
    asks = []
    bundle = bytes(range(26))  # 6 chunks of 4 bytes, then 2

    async def send(leaf, payload):
        ask = cbor.decode(payload)
        asks.append((ask["off"], ask["n"], ask["k"]))
        for i in range(ask["k"]):
            at = ask["off"] + i * ask["n"]
            _answer(up, at, bundle[at : at + ask["n"]])

    up.send = send

    async def pull():
        got = b""
        while len(got) < len(bundle):
            n = min(4, len(bundle) - len(got))
            got += await up._fetch(len(got), n, len(bundle))
        return got

    equal(asyncio.run(pull()), bundle, "bytes")
    equal(asks, [(0, 4, 3), (12, 4, 3), (24, 2, 1)], "requests")
    equal(up._ahead, {}, "nothing left held")
