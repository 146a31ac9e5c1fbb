# The uplink half of the agent, built from the board, the config and the journal: clock,
# uploader, MQTT session supervisor, netdiag, heartbeat and commands, plus their periodic tasks.
# main.py builds it; tests build it with fake ticks and fake boards.
import asyncio
import gc

from batch import BatchWriter
from clock import Clock
from commands import Commands
from heartbeat import Heartbeat
from micropython import const
from mqtt_codec import MQTTError
from netdiag import NetDiag
from timefloor import TimeFloor
from uplink import Uplink
from uploader import Uploader

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
    def __init__(self, board, cfg, ticks_ms, ticks_diff, rand32):
        # Allocated first, at boot, while the heap is still in one piece: the 8 KB batch
        # buffer is the agent's only large block and is reused for every batch.
        key = cfg["key"]
        self.writer = BatchWriter(
            cfg["dev"], bytes.fromhex(key) if key else None, cfg["batch_bytes"]
        )
        self.board = board
        self.cfg = cfg
        self.clock = Clock(ticks_ms, ticks_diff, cfg["scale"])
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self._rand = rand32

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
            import tlscreds  # lazily: a plain-TCP board never loads it

            try:
                self.uplink.creds = tlscreds.load(cfg["secrets"])
            except tlscreds.CredentialError as exc:
                # Every attempt then fails at stage tls, journaled: never a plain fallback.
                print("tls:", exc)
        self.cause = self.board.reset_cause()
        self.heartbeat = Heartbeat(
            cfg["dev"], journal, self.clock, self.board, self.uplink, self.cause
        )
        self.commands = Commands(cfg, self.uploader, self.heartbeat)
        self.uplink.on_cmd = self.commands.handle

    def sync_clock(self):
        # Wall time from the board's own source (NTP, modem), journaled when it steps.
        found = self.board.wall_time()
        if found is None:
            return
        step = self.clock.set(found[0], found[1])
        if step is not None:
            self.diag.record({"ev": "clock", "step_s": step, "src": found[1]})

    async def _every(self, key, action):
        while True:
            await asyncio.sleep_ms(self.clock.sleep_ms(self.cfg[key] * 1000))
            await _safely(action)

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
        return tasks

    async def _every_s(self, seconds, action):
        while True:
            await asyncio.sleep_ms(self.clock.sleep_ms(seconds * 1000))
            await _safely(action)


async def _safely(action):
    # A periodic task must outlive one bad round (a board call failing, a link breaking
    # mid-ping): the error is shown on the console and the next round runs as usual.
    try:
        await action()
    except Exception as exc:
        print("daozhang agent: a periodic task failed: %r" % (exc,))
