# Pulling an update over MQTT (DESIGN §1.6). The host offers a bundle on dz/v1/{dev}/ota:
#   {op: "offer", id: SHA-256 of the manifest, msize, size, mac: HMAC of the manifest}
# and the device asks for its bytes, a window of chunks at a time, on dz/v1/{dev}/fetch:
#   {id: id[:8], off, n, k}  ->  k messages {op: "chunk", id: id[:8], off, d: bytes} on
#   dz/v1/{dev}/ota, of n bytes each from off (a host that knows no `k` sends the first alone)
# `off` counts from the manifest's first byte, files after it (the bundle without its header).
# The chunks wait in `_ahead` until used (at most k of them, n bytes each), so a slow link pays
# one round trip a window, not one a chunk. The device asks only while its own uploads have
# nothing in flight, so receipts go first on a slow link; a chunk that does not come is asked
# again. The offer is kept on flash until it is installed or refused, so a power cut resumes
# it (the staged files say how far it got).
import asyncio
import hashlib
import time
from binascii import hexlify

from dzcore import cbor
from dzcore.ota.stage import Refused, Stager, judge
from micropython import const

_CHUNK = const(640)  # a chunk message fits the client's 1 KB receive buffer
_WAIT_MS = const(8000)
_MAX_MANIFEST = const(8192)
_HASH_RETRIES = const(3)


def _nothing(*args):
    return None


def _no():
    return False


def _zero():
    return 0


async def _send(leaf, payload):
    pass


class Updater:
    def __init__(self, slots, hmac256, board, running, mpy_major, cfg):
        self.slots = slots
        self.mac = hmac256
        self.board = board
        self.running = running
        self.mpy_major = mpy_major
        self.gap_ms = cfg.get("ota_gap_ms", 200)
        self.window = cfg.get("ota_window", 4)  # chunks asked at once
        self.offer = {}  # type: dict  # {id, msize, size, mac, result}; {} when none
        self.state = None  # said in heartbeats: "fetching 45%", "refused mac", ...
        # Set by the agent:
        self.send = _send  # async (leaf, payload): publish QoS 0
        self.busy = _no  # () -> True while receipts are in flight (the uploader's window)
        self.online = _no  # () -> True while connected
        self.sessions = _zero  # () -> sessions started so far: a new one lost what was asked
        self.report = _nothing  # () -> None: a heartbeat now, when the state changed
        self.restart = _nothing  # () -> raises: start the version just switched to
        self.note = _nothing  # (body) -> None: a diag record
        self._path = slots.root + "/offer.cbor"
        self._kick = asyncio.Event()
        self._ahead = {}  # type: dict  # off -> bytes: the window's chunks come, not yet used
        self._window = ()  # type: tuple  # the offsets asked for, while they may come
        self._session = 0  # the session and time they were asked in
        self._asked_at = time.ticks_ms()

    def load(self):
        # At boot: an offer left unfinished by a power cut resumes; a finished one is said.
        try:
            with open(self._path, "rb") as f:
                held = cbor.decode(f.read())
        except (OSError, ValueError):
            held = None
        if not isinstance(held, dict) or not isinstance(held.get("id"), bytes):
            return
        self.offer = held
        p = self.slots.p or self.slots.load()
        result = self.offer.get("result")
        if result == "switched":
            last = p.get("last") or ""
            if last.startswith("rolled_back"):
                result = last.replace("_", " ", 1)
            elif p["state"] == "ok":
                result = "confirmed"
            else:
                result = "trial"
            if result != "trial":
                self._finish(result)
        self._set(result or "offered")
        if not result:
            self._kick.set()

    def _save(self):
        import os

        try:
            os.mkdir(self.slots.root)
        except OSError:
            pass
        tmp = self._path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(cbor.encode(self.offer))
        os.rename(tmp, self._path)

    def _finish(self, result):
        self.offer["result"] = result
        self._save()
        self._set(result)

    def _set(self, text):
        # Heartbeats say it with the offer's id (8 hex digits), so the host knows which offer.
        state = "%s %s" % (hexlify(self.offer["id"][:4]).decode(), text)
        if state != self.state:
            self.state = state
            self.report()

    def confirmed(self):
        # The agent confirmed the version on trial.
        if self.offer.get("result") == "switched":
            self._finish("confirmed")

    # -- messages on dz/v1/{dev}/ota -----------------------------------------------------------
    def on_message(self, payload):
        try:
            msg = cbor.decode(payload)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        op = msg.get("op")
        if op == "chunk":
            if self.offer and msg.get("id") == self.offer["id"][:8]:
                off = msg.get("off")
                if off in self._window:
                    self._ahead[off] = msg.get("d")
        elif op == "offer":
            self._on_offer(msg)

    def _on_offer(self, msg):
        oid, msize, size, mac = msg.get("id"), msg.get("msize"), msg.get("size"), msg.get("mac")
        if not (isinstance(oid, bytes) and len(oid) == 32 and isinstance(mac, bytes)):
            return
        if not (isinstance(msize, int) and isinstance(size, int)):
            return
        if self.offer and self.offer["id"] == oid:
            if self.offer.get("result"):
                self.report()  # asked again: say the result again
            return
        if self.offer and not self.offer.get("result"):
            return  # one update at a time: the one under way goes on
        if not 0 < msize <= _MAX_MANIFEST:
            self.offer = {"id": oid, "msize": 0, "size": 0, "mac": b""}
            self._finish("refused bad")
            return
        self.offer = {"id": oid, "msize": msize, "size": size, "mac": mac}
        self._save()
        self._set("offered")
        self._kick.set()

    # -- the download --------------------------------------------------------------------------
    async def run(self):
        while True:
            await self._kick.wait()
            self._kick.clear()
            while self.offer and not self.offer.get("result"):
                try:
                    await self._install()
                except Refused as exc:
                    why = exc.args[0]
                    if why == "busy":
                        await asyncio.sleep_ms(60000)
                        continue
                    self.note({"ev": "ota", "st": "refused", "why": why})
                    self._finish("refused " + why)

    async def _fetch(self, off, n, end):
        # The `n` bytes at `off`: asked with a window of whole chunks up to `end` (the
        # manifest's end, or the bundle's), or already asked with an earlier chunk's window.
        oid = self.offer["id"]
        asked = off in self._window
        while True:
            if not asked:
                await asyncio.sleep_ms(self.gap_ms)  # between windows: receipts go first
                while self.busy() or not self.online():
                    await asyncio.sleep_ms(200)
                self._ahead = {}
                k = max(1, min(self.window, (end - off) // n))  # the last, short chunk alone
                self._window = tuple(off + i * n for i in range(k))
                self._session = self.sessions()
                self._asked_at = time.ticks_ms()
                ask = {"id": oid[:8], "off": off, "n": n, "k": k}
                await self.send("fetch", cbor.encode(ask))
            asked = False
            # A link that drops (or a session that starts again) meanwhile took the question or
            # its answers with it: ask again as soon as it is back, not after the whole wait.
            while (
                time.ticks_diff(time.ticks_ms(), self._asked_at) < _WAIT_MS
                and self.online()
                and self.sessions() == self._session
            ):
                data = self._ahead.pop(off, None)
                if data is not None:
                    if isinstance(data, bytes) and len(data) == n:
                        return data
                    break
                await asyncio.sleep_ms(20)
            self._window = ()

    async def _install(self):
        offer = self.offer
        msize = offer["msize"]
        buf = bytearray(msize)
        got = 0
        while got < msize:
            n = min(_CHUNK, msize - got)
            buf[got : got + n] = await self._fetch(got, n, msize)
            got += n
        manifest = bytes(buf)
        del buf
        if hashlib.sha256(manifest).digest() != offer["id"]:
            raise Refused("bad")
        m = judge(manifest, offer["mac"], self.mac, self.board, self.running, self.mpy_major)
        target = self.slots.target()
        if target is None:
            raise Refused("busy")  # a version on trial: its predecessor must stay whole
        stager = Stager(self.slots.root + "/" + target, manifest, m)
        off = stager.begin()
        bad = 0
        while off < stager.total:
            # Said in steps of 10 %: each change is a signed heartbeat, not one per chunk.
            self._set("fetching %d%%" % (off * 10 // stager.total * 10))
            n = min(_CHUNK, stager.total - off)
            data = await self._fetch(msize + off, n, msize + stager.total)
            try:
                off = stager.write(off, data)
            except Refused:
                self._ahead, self._window = {}, ()  # the file is asked again, afresh
                bad += 1
                if bad >= _HASH_RETRIES:
                    raise
                off = stager.offset()
        if not stager.verify():
            raise Refused("hash")
        self.slots.switch(target, m["version"])
        self.note({"ev": "ota", "st": "switched", "ver": m["version"]})
        self._finish("switched")
        self.restart()
