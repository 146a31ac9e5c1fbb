# The uplink half of the agent, built from the board, the config and the journal: clock,
# uploader, MQTT session supervisor, netdiag, heartbeat and commands, plus their periodic tasks.
# main.py builds it; tests build it with fake ticks and fake boards.
import asyncio
import gc

from dzcore.uplink.batch import BatchWriter
from dzcore.uplink.clock import Clock
from dzcore.uplink.commands import Commands, Counter
from dzcore.uplink.heartbeat import Heartbeat
from dzcore.uplink.hmac256 import HMAC256
from dzcore.uplink.mqtt_codec import MQTTError
from dzcore.uplink.netdiag import NetDiag
from dzcore.uplink.timefloor import TimeFloor
from dzcore.uplink.uplink import Uplink
from dzcore.uplink.uploader import Uploader
from micropython import const

_TICK_MS = const(1000)
_COMMIT_S = const(300)
_PING_WAIT_MS = const(5000)
# Collect after this many bytes allocated (not only when the heap is full). MicroPython
# allocates first-fit from the lowest free block and frees nothing until a collection: left
# alone, each cycle's allocations sweep upward through the whole heap, and the long-lived
# objects made on the way (intake's keys, in-flight entries, task state) end up scattered over
# all of it, leaving no 640-byte hole in a 64 KB heap with 40 KB free. Collecting every 8 KB
# keeps that frontier low, so long-lived objects stay packed at the bottom.
_GC_EVERY = const(8192)


class Agent:
    def __init__(self, board, cfg, ticks_ms, ticks_diff, rand32, ota=None):
        # ota: (slot, Slots) of the running version (dzcore/ota/), None when run alone.
        # Allocated first, at boot, while the heap is still in one piece: the 8 KB batch
        # buffer is the agent's only large block and is reused for every batch.
        key = cfg["key"]
        self.writer = BatchWriter(
            cfg["dev"], bytes.fromhex(key) if key else None, cfg["batch_bytes"]
        )
        self.board = board
        self.cfg = cfg
        # A board with a real-time clock answers rtc(); the others answer None (BoardBase).
        self.clock = Clock(ticks_ms, ticks_diff, cfg["scale"], board.rtc)
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self._rand = rand32
        self.ota = ota

    def attach(self, journal):
        # Builds everything that reads the journal; call after journal.mount().
        cfg = self.cfg
        self.journal = journal
        self.diag = NetDiag(journal, self.clock, self.board)
        self.uploader = Uploader(
            journal,
            self.writer,
            self._ticks,
            self._diff,
            window=cfg["window"],
            max_records=cfg["batch_records"],
            ack_timeout_ms=cfg["ack_timeout_s"] * 1000,
        )
        self.uplink = Uplink(
            self.board,
            cfg,
            self.clock,
            self.uploader,
            self.diag,
            self._rand,
            self._ticks,
            self._diff,
        )
        self.uplink.floor = TimeFloor(cfg["time_floor"] or journal.root + ".time")
        self.uplink.floor.load()
        if cfg["tls"]:
            from dzcore.uplink import tlscreds  # lazily: a plain-TCP board never loads it

            try:
                self.uplink.creds = tlscreds.load(cfg["secrets"])
            except tlscreds.CredentialError as exc:
                # Every attempt then fails at stage tls, journaled: never a plain fallback.
                print("tls:", exc)
        self.cause = self.board.reset_cause()
        self.uplink.mac = self.writer.mac
        self.heartbeat = Heartbeat(
            cfg["dev"], journal, self.clock, self.board, self.uplink, self.cause, self.writer.mac
        )
        if self.ota is not None and self.ota[1].p.get("ver"):
            self.heartbeat.fw = self.ota[1].p["ver"]  # an update's version, not the flashed one
        # Commands are verified with the device key (DESIGN §1.5); their counter is kept
        # beside the journal, like the time floor, and survives a reflash of the agent.
        counter = Counter(journal.root + ".cmd")
        counter.load()
        mac = HMAC256(bytes.fromhex(cfg["key"])) if cfg["key"] else None
        self.commands = Commands(
            cfg, self.uploader, self.heartbeat, mac, counter, self.diag, self._reply
        )
        self.uplink.on_cmd = self.commands.handle
        # Updates (dzcore/ota/fetch.py) are loaded when one is offered, or when one is under
        # way from before this boot: on the unix port their code would take heap for nothing.
        self.updater = None
        self._mac = mac
        self._updating = asyncio.Event()
        if self.ota is not None:
            self.uplink.on_ota = self._on_ota
            if _unfinished(self.ota[1].root + "/offer.cbor"):
                self._updater()

    def _on_ota(self, payload):
        up = self.updater
        if up is None:
            up = self._updater()
        up.on_message(payload)

    async def _updates(self):
        await self._updating.wait()
        up = self.updater
        if up is not None:
            await up.run()

    def _updater(self):
        # Pulls and installs updates offered on dz/v1/{dev}/ota (dzcore/ota/fetch.py).
        import sys

        from dzcore.ota.fetch import Updater

        up = Updater(
            self.ota[1],
            self._mac,
            self.board.spec().get("board"),
            self.heartbeat.fw,
            sys.implementation._mpy & 0xFF,
            self.cfg,
        )
        up.send = self._send
        up.busy = lambda: bool(self.uploader.inflight)
        up.online = lambda: self.uplink.connected
        up.sessions = lambda: self.uplink.sessions
        up.report = self._report_now
        up.restart = self._restart
        up.note = self._note
        self.updater = up
        self.heartbeat.ota = self._update_state
        up.load()
        self._updating.set()
        return up

    def _update_state(self):
        return self.updater.state if self.updater is not None else None

    def _report_now(self):
        asyncio.create_task(self.heartbeat.send())

    def _note(self, body):
        self.diag.record(body)
        self.journal.commit()

    def _restart(self):
        from dzcore.ota.boot import Restart

        raise Restart()

    async def _send(self, leaf, data):
        if not self.uplink.connected:
            return
        try:
            await self.uplink.client.publish(self.uplink.topic(leaf), data, 0)
        except (OSError, MQTTError):
            pass  # the session notices the broken link itself

    async def _reply(self, data):
        # A command's answer (QoS 0, like the heartbeat): lost with the link, like a command.
        if not self.uplink.connected:
            return
        try:
            await self.uplink.client.publish(self.uplink.topic("reply"), data, 0)
        except (OSError, MQTTError):
            pass  # the session notices the broken link itself

    def sync_clock(self):
        # Wall time from the board's own source (NTP, modem), journaled when it steps.
        found = self.board.wall_time()
        if found is None:
            return
        step = self.clock.set(found[0], found[1])
        if step is not None:
            self.diag.record({"ev": "clock", "step_s": step, "src": found[1]})

    async def _every(self, key, action):
        # Sleeps in slices of at most a second and reads the interval again after each, so
        # that a remote `set` (DESIGN §1.5) takes effect at once, not after the old interval.
        waited = 0
        while True:
            due = self.clock.sleep_ms(self.cfg[key] * 1000)
            if waited >= due:
                waited = 0
                await _safely(action)
                continue
            step = min(_TICK_MS, due - waited)
            await asyncio.sleep_ms(step)
            waited += step

    async def _probe(self):
        client = self.uplink.client
        rtt = None
        if self.uplink.connected:
            client.rtt_ms = None
            try:
                await client.ping()
            except (OSError, MQTTError):
                pass  # the session notices the broken link itself
            waited = 0
            while client.rtt_ms is None and waited < _PING_WAIT_MS and self.uplink.connected:
                await asyncio.sleep_ms(50)
                waited += 50
            rtt = client.rtt_ms
        self.sync_clock()
        self.diag.probe(rtt)

    async def _signal(self):
        self.diag.sample_signal()

    async def _heartbeat(self):
        await self.heartbeat.send()

    async def _commit(self):
        self.journal.commit()

    async def _tick(self):
        # Samples the uptime often enough to survive the ticks wrap, and wakes the uploader
        # when intake appended records.
        seen = self.journal.next_seq
        while True:
            await asyncio.sleep_ms(_TICK_MS)
            self.clock.up_ms()
            self.board.feed_watchdog()
            if self.journal.next_seq != seen:
                seen = self.journal.next_seq
                self.uploader.kick()

    def tasks(self, record_boot=True, commit_diag=True):
        # The coroutines to run, after attach(). main.py journals the boot record and runs
        # the periodic diag commit itself; alone (tests, benches) the agent does both.
        gc.collect()
        gc.threshold(_GC_EVERY)
        if record_boot:
            self.diag.boot(self.cause)
        self.sync_clock()
        self.diag.sample_signal()
        tasks = [
            self.uplink.run(),
            self._tick(),
            self._every("hb_s", self._heartbeat),
            self._every("probe_s", self._probe),
            self._every("signal_s", self._signal),
        ]
        if commit_diag:
            tasks.append(self._every_s(_COMMIT_S, self._commit))
        if self.ota is not None and self.ota[1].p["state"] == "trial":
            tasks.append(self._trial())
        if self.ota is not None:
            tasks.append(self._updates())
        return tasks

    async def _trial(self):
        # A version on trial proves itself with an ack within ota_trial_s (DESIGN §1.6);
        # else the previous version is put back and started (dzcore/ota/boot.py).
        slots = self.ota[1]
        start = self.clock.up_ms()
        limit = self.cfg["ota_trial_s"] * 1000
        while not self.uplink.acks:
            if self.clock.up_ms() - start >= limit:
                slots.rollback("no_ack")
                self._note({"ev": "ota", "st": "rolled_back", "why": "no_ack"})
                self._restart()
            await asyncio.sleep_ms(_TICK_MS)
        slots.confirm()
        self._note({"ev": "ota", "st": "confirmed", "ver": self.heartbeat.fw})
        if self.updater is not None:
            self.updater.confirmed()

    async def _every_s(self, seconds, action):
        while True:
            await asyncio.sleep_ms(self.clock.sleep_ms(seconds * 1000))
            await _safely(action)


def _unfinished(path):
    # An offer kept on flash that is still to be downloaded, or switched to and on trial.
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    from dzcore import cbor

    try:
        held = cbor.decode(data)
    except ValueError:
        return False
    return isinstance(held, dict) and held.get("result") in (None, "switched")


async def _safely(action):
    # A periodic task must outlive one bad round (a board call failing, a link breaking
    # mid-ping): the error is shown on the console and the next round runs as usual.
    try:
        await action()
    except Exception as exc:
        print("daozhang agent: a periodic task failed: %r" % (exc,))
