# Remote commands on the device (DESIGN §1.5): the MAC, the persisted counter, the refusals and
# their diag records, the answers; against a RAM journal and fakes, the counter on a real file.
import asyncio

from dzcore import cbor
from dzcore.uplink import config
from dzcore.uplink.clock import Clock
from dzcore.uplink.commands import Commands, Counter
from dzcore.uplink.hmac256 import HMAC256
from dzcore.uplink.netdiag import NetDiag
from fake_journal import Journal
from fake_ticks import FakeTicks
from mptest import check, equal, heap, tmpdir

DEV = "dev-0001"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


class _Uploader:
    kicked = 0

    def kick(self):
        self.kicked += 1


class _Heartbeat:
    sent = 0

    async def send(self):
        self.sent += 1


class _Counter:
    def __init__(self, fail=False):
        self.value = 0
        self.fail = fail

    def advance(self, n):
        if self.fail:
            raise OSError(28)
        self.value = n


class _Board:
    def signal(self):
        return {}


def signed(msg, key=KEY):
    data = cbor.encode(msg)
    return data + HMAC256(key).digest(data)


def command(n, op, dev=DEV, **settings):
    msg = {"v": 1, "dev": dev, "n": n, "op": op}
    msg.update(settings)
    return msg


class _World:
    def __init__(self, key=KEY, counter=None):
        ticks = FakeTicks()
        self.journal = Journal()
        self.journal.mount()
        diag = NetDiag(self.journal, Clock(ticks.ticks_ms, ticks.ticks_diff), _Board())
        self.cfg = dict(config.DEFAULTS)
        self.cfg["dev"] = DEV
        self.uploader = _Uploader()
        self.heartbeat = _Heartbeat()
        self.counter = counter or _Counter()
        self.answers = []
        self.cmds = Commands(
            self.cfg,
            self.uploader,
            self.heartbeat,
            HMAC256(key) if key else None,
            self.counter,
            diag,
            self._send,
        )

    async def run(self, payload):
        # handle(), then a turn of the loop so that its answer goes out
        ok = self.cmds.handle(payload)
        await asyncio.sleep_ms(0)
        await asyncio.sleep_ms(0)
        return ok

    async def _send(self, data):
        self.answers.append(data)

    def refusals(self):
        items, _, _ = self.journal.peek(1, 100, 1 << 20)
        bodies = [cbor.decode(rec)["b"] for _, rec in items]
        return [(b["why"], b["n"]) for b in bodies if b["ev"] == "cmd_refused"]

    def answer(self, key=KEY):
        # The last answer, its MAC checked like the host does.
        data = self.answers[-1]
        body = data[:-32]
        equal(data[-32:], HMAC256(key).digest(body), "the answer's MAC")
        return cbor.decode(body)


@heap("96K")
def test_signed_commands_run_and_are_answered():
    async def main():
        w = _World()
        check(await w.run(signed(command(1, "flush"))), "flush")
        equal(w.uploader.kicked, 1, "uploader kicked")
        check(await w.run(signed(command(2, "report"))), "report")
        check(await w.run(signed(command(5, "set", hb_s=60, signal_s=600))), "set")
        await asyncio.sleep_ms(0)
        equal(w.heartbeat.sent, 1, "heartbeat sent")
        equal((w.cfg["hb_s"], w.cfg["signal_s"]), (60, 600), "applied")
        equal(w.counter.value, 5, "the counter follows the host's, gaps allowed")
        equal(len(w.answers), 3, "one answer per command")
        equal(w.answer(), {"v": 1, "dev": DEV, "n": 5, "ok": True, "seen": 5}, "answer")
        equal(w.refusals(), [], "nothing refused")

    asyncio.run(main())


@heap("96K")
def test_unverifiable_commands_are_refused_and_journaled():
    async def main():
        w = _World()
        good = signed(command(3, "set", hb_s=60))
        tampered = bytearray(good)
        tampered[-40] ^= 1  # a byte of the map
        cases = [
            (cbor.encode(command(1, "report")), "mac", 0),  # unsigned
            (bytes(tampered), "mac", 0),
            (signed(command(1, "report"), OTHER_KEY), "mac", 0),  # another device's key
            (b"", "mac", 0),
            (signed([1, 2]), "bad", 0),
            (signed(command(0, "report")), "bad", 0),
            (signed(command(2**31, "report")), "bad", 0),
            (signed(command(1, "report", dev="dev-0002")), "dev", 1),
        ]
        for payload, why, n in cases:
            check(not await w.run(payload), why)
            equal(w.answer()["why"], why, "answered")
            equal(w.answer()["n"], n, "the answer's n")
        check(await w.run(good), "the untampered command")
        check(not await w.run(good), "the same again")
        equal(w.answer(), {"v": 1, "dev": DEV, "n": 3, "ok": False, "why": "replay", "seen": 3}, "")
        check(not await w.run(signed(command(2, "flush"))), "an older one")
        await asyncio.sleep_ms(0)
        equal(w.uploader.kicked, 0, "nothing ran")
        equal(w.heartbeat.sent, 0, "nothing ran")
        whys = [why for why, _ in w.refusals()]
        equal(whys, [c[1] for c in cases] + ["replay", "replay"], "each refusal journaled")
        equal(w.cmds.refused, len(cases) + 2, "counted")

    asyncio.run(main())


@heap("96K")
def test_set_is_whole_and_within_the_flash_bounds():
    async def main():
        w = _World()
        before = dict(w.cfg)
        cases = [
            (dict(hb_s=0), "range"),
            (dict(hb_s=86401), "range"),
            (dict(probe_s="60"), "range"),
            (dict(hb_s=True), "range"),
            (dict(hb_s=60, keepalive_s=30), "key"),  # valid in flash, not live: refused whole
            (dict(hb_s=60, port=1), "key"),
            (dict(), "key"),
        ]
        n = 0
        for settings, why in cases:
            n += 1
            check(not await w.run(signed(command(n, "set", **settings))), why)
            equal(w.answer()["why"], why, str(settings))
        check(not await w.run(signed(command(n + 1, "reboot"))), "unknown op")
        check(not await w.run(signed(command(n + 2, "flush", hb_s=5))), "flush with extras")
        equal(w.answer()["why"], "op", "")
        equal(w.cfg, before, "a refused set changes nothing")
        equal(w.counter.value, n + 2, "refused but authentic commands are spent")
        check(await w.run(signed(command(n + 3, "set", hb_s=1, probe_s=604800))), "bounds")

    asyncio.run(main())


@heap("96K")
def test_no_key_or_no_flash_refuses():
    async def main():
        w = _World(key=None)
        check(not await w.run(signed(command(1, "flush"))), "no key")
        data = w.answers[-1]
        equal(cbor.decode(data)["why"], "nokey", "answered unsigned")
        w = _World(counter=_Counter(fail=True))
        check(not await w.run(signed(command(1, "flush"))), "counter not written")
        equal(w.answer()["why"], "flash", "")
        equal(w.uploader.kicked, 0, "not run")

    asyncio.run(main())


@heap("96K")
def test_the_counter_survives_a_restart():
    path = tmpdir() + "/journal.cmd"
    counter = Counter(path)
    equal(counter.load(), 0, "no file yet")
    counter.advance(7)
    again = Counter(path)
    equal(again.load(), 7, "read back")
    w = _World(counter=again)
    check(not w.cmds.handle(signed(command(7, "flush"))), "replay after a restart")
    check(w.cmds.handle(signed(command(8, "flush"))), "the next one")
    equal(Counter(path).load(), 8, "persisted")
