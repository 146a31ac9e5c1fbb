"""A fault-injecting TCP proxy on loopback: what a flaky 2G/Wi-Fi link does to a connection.

    proxy = FaultProxy("127.0.0.1", broker_port).start()   # listens on proxy.port
    proxy.blackhole(True)     # nothing moves either way; sockets stay open (half-open)
    proxy.reset()             # every open connection is reset (RST), both sides
    proxy.shape(delay_ms=150, up_bps=6250)   # one-way delay, bandwidth caps (bytes/s)
    proxy.refuse(True)        # new connections are reset at once
    proxy.flap(up_s=5, down_s=3)             # blackhole on and off, until flap(None)
    proxy.chaos(seed=1, mean_s=4)            # random mix of the above, until chaos(None)
    proxy.stop()

Bytes are never dropped from a stream that stays open (TCP would retransmit them): a blackhole
holds them, so a connection that lives through one carries on intact, and one that gives up
(the device's dead-link timer) is closed only when the link comes back, as a peer learns it.
The proxy runs its own asyncio loop in a daemon thread; every control method is thread-safe.
`stats` counts bytes each way (payload bytes of TCP, what a bandwidth budget is spent on).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from daozhang.ports import free_port

_CHUNK = 1460  # one TCP segment on Ethernet: pacing at this grain keeps shaping smooth


@dataclass
class Shape:
    delay_ms: float = 0.0  # one way, each direction
    up_bps: float = 0.0  # client -> server, bytes per second; 0 = unlimited
    down_bps: float = 0.0
    buffer_bytes: int = 16384  # the link's queue (a modem buffer) before back-pressure


@dataclass
class Stats:
    connections: int = 0
    resets: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    events: list[tuple[float, str]] = field(default_factory=list)


class _Pipe:
    """One direction of one connection: read, pace, delay, write."""

    def __init__(
        self,
        proxy: FaultProxy,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up: bool,
    ) -> None:
        self.proxy = proxy
        self.reader = reader
        self.writer = writer
        self.up = up
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.queued = 0
        self.link_free_at = 0.0
        self.room = asyncio.Event()
        self.room.set()

    async def read_side(self) -> None:
        proxy = self.proxy
        while True:
            await proxy.open_gate()
            await self.room.wait()
            data = await self.reader.read(_CHUNK)
            await proxy.open_gate()  # a read that completes during a blackhole waits
            if not data:
                await self.queue.put((0.0, b""))
                return
            shape = proxy.shape_now
            bps = shape.up_bps if self.up else shape.down_bps
            now = time.monotonic()
            start = max(now, self.link_free_at)
            self.link_free_at = start + (len(data) / bps if bps else 0.0)
            self.queued += len(data)
            if self.queued >= shape.buffer_bytes:
                self.room.clear()
            await self.queue.put((self.link_free_at + shape.delay_ms / 1000, data))

    async def write_side(self) -> None:
        proxy = self.proxy
        while True:
            deliver_at, data = await self.queue.get()
            wait = deliver_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await proxy.open_gate()
            if not data:
                self.writer.close()
                return
            self.writer.write(data)
            await self.writer.drain()
            self.queued -= len(data)
            if self.queued < proxy.shape_now.buffer_bytes:
                self.room.set()
            if self.up:
                proxy.stats.bytes_up += len(data)
            else:
                proxy.stats.bytes_down += len(data)


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port or free_port()
        self.shape_now = Shape()
        self.stats = Stats()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._gate: asyncio.Event | None = None
        self._refuse = False
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._schedule: asyncio.Task[None] | None = None

    # -- life -----------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start)
        return self

    async def _start(self) -> None:
        self._gate = asyncio.Event()
        self._gate.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _stop(self) -> None:
        if self._schedule is not None:
            self._schedule.cancel()
        if self._server is not None:
            self._server.close()
        self._reset_all()
        for task in list(self._tasks):
            task.cancel()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro_fn: Callable[[], Coroutine[object, object, None]]) -> None:
        asyncio.run_coroutine_threadsafe(coro_fn(), self._loop).result(timeout=10)

    def _note(self, event: str) -> None:
        self.stats.events.append((time.monotonic(), event))

    # -- controls (thread-safe) ------------------------------------------------------------
    def blackhole(self, on: bool) -> None:
        self._loop.call_soon_threadsafe(self._set_blackhole, on)

    def _set_blackhole(self, on: bool) -> None:
        assert self._gate is not None
        if on and self._gate.is_set():
            self._gate.clear()
            self._note("blackhole")
        elif not on and not self._gate.is_set():
            self._gate.set()
            self._note("link back")

    def reset(self) -> None:
        self._loop.call_soon_threadsafe(self._reset_all)

    def refuse(self, on: bool) -> None:
        self._refuse = on

    def shape(
        self,
        delay_ms: float = 0.0,
        up_bps: float = 0.0,
        down_bps: float = 0.0,
        buffer_bytes: int = 16384,
    ) -> None:
        self.shape_now = Shape(delay_ms, up_bps, down_bps, buffer_bytes)

    def flap(self, up_s: float | None, down_s: float = 0.0) -> None:
        async def flapping() -> None:
            while True:
                await asyncio.sleep(up_s or 0)
                self._set_blackhole(True)
                await asyncio.sleep(down_s)
                self._set_blackhole(False)

        self._loop.call_soon_threadsafe(
            self._replace_schedule, flapping if up_s is not None else None
        )

    def chaos(self, seed: int | None, mean_s: float = 4.0, max_down_s: float = 8.0) -> None:
        """Random faults until chaos(None): blackholes, resets, refusals, delay and throttle."""
        rng = random.Random(seed)

        async def chaotic() -> None:
            while True:
                await asyncio.sleep(rng.expovariate(1 / mean_s))
                kind = rng.choice(["blackhole", "reset", "refuse", "slow", "flap"])
                self._note(f"chaos {kind}")
                if kind == "blackhole":
                    self._set_blackhole(True)
                    await asyncio.sleep(rng.uniform(0.5, max_down_s))
                    self._set_blackhole(False)
                elif kind == "reset":
                    self._reset_all()
                elif kind == "refuse":
                    self._refuse = True
                    self._reset_all()
                    await asyncio.sleep(rng.uniform(0.5, max_down_s / 2))
                    self._refuse = False
                elif kind == "slow":
                    self.shape_now = Shape(
                        rng.uniform(50, 400), rng.uniform(2000, 20000), rng.uniform(2000, 20000)
                    )
                    await asyncio.sleep(rng.uniform(1, max_down_s))
                    self.shape_now = Shape()
                else:
                    for _ in range(rng.randint(2, 5)):
                        self._set_blackhole(True)
                        await asyncio.sleep(rng.uniform(0.2, 1.5))
                        self._set_blackhole(False)
                        await asyncio.sleep(rng.uniform(0.2, 1.5))

        self._loop.call_soon_threadsafe(
            self._replace_schedule, chaotic if seed is not None else None
        )

    def _replace_schedule(self, fn: Callable[[], Coroutine[object, object, None]] | None) -> None:
        if self._schedule is not None:
            self._schedule.cancel()
            self._schedule = None
        self._set_blackhole(False)
        self._refuse = False
        if fn is not None:
            self._schedule = self._loop.create_task(fn())

    # -- connections ------------------------------------------------------------------------
    async def open_gate(self) -> None:
        assert self._gate is not None
        await self._gate.wait()

    def _reset_all(self) -> None:
        for pair in list(self._conns):
            for w in pair:
                _abort(w)
        if self._conns:
            self.stats.resets += 1
            self._note("reset")
        self._conns.clear()

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        if self._refuse:
            _abort(c_writer)
            return
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(c_writer)  # the server is down: the client sees a reset, as from a NAT
            return
        self.stats.connections += 1
        pair = (c_writer, s_writer)
        self._conns.add(pair)
        pipes = [
            _Pipe(self, c_reader, s_writer, up=True),
            _Pipe(self, s_reader, c_writer, up=False),
        ]
        tasks = [
            asyncio.ensure_future(coro) for p in pipes for coro in (p.read_side(), p.write_side())
        ]
        for task in tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            # Both directions end once one side closed and the other followed, or one erred.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for t in tasks:
                t.cancel()
            self._conns.discard(pair)
            for w in pair:
                with contextlib.suppress(Exception):
                    w.close()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a NAT or a modem that lost its bearer does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
