# The download's chunk requests (dzcore/ota/fetch.py): a chunk asked just before the link
# dropped is asked again as soon as a new session is up, not after the whole 8 s wait.
import asyncio
import time

from dzcore.ota.fetch import Updater
from mptest import check, equal


class _Slots:
    root = "/tmp/unused-ota"


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
            up._chunk = (0, b"abcd")  # the host answers this one

    up.send = send
    start = time.ticks_ms()
    data = asyncio.run(up._fetch(0, 4))
    took = time.ticks_diff(time.ticks_ms(), start)
    equal(data, b"abcd", "chunk")
    equal(len(asks), 2, "asks")
    check(took < 1000, "asked again after %d ms (the whole wait is 8000)" % took)
