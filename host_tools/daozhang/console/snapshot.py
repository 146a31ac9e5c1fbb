"""A value that is costly to compute, kept and recomputed in the background.

The fleet page reads every device (`fleetview.fleet_rows`): seconds for 10,000 devices. A
page must answer in a fraction of that, and ten people refreshing must not mean ten
computations, so the console keeps the last result and serves it; once it is older than its
refresh interval, the next request starts one recomputation in a worker thread and is
answered from the old result meanwhile. The refresh interval is at least `min_age_s` (the
page's poll) and at least `spacing` times the last computation's length, so that a large
fleet costs the host at most 1/`spacing` of a core. Only the first request waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(
        self,
        compute: Callable[[], T],
        min_age_s: float,
        spacing: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._min_age_s = min_age_s
        self._spacing = spacing
        self._clock = clock
        self._value: T | None = None
        self._at = 0.0
        self._took = 0.0
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    @property
    def took_s(self) -> float:
        """How long the last computation took."""
        return self._took

    async def _run(self) -> None:
        started = self._clock()
        value = await run_in_threadpool(self._compute)
        self._value, self._at, self._took = value, started, self._clock() - started

    async def get(self) -> T:
        if self._value is None:
            async with self._lock:
                if self._value is None:
                    await self._run()
        age = self._clock() - self._at
        stale = age > max(self._min_age_s, self._spacing * self._took)
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.get_running_loop().create_task(self._run())
        assert self._value is not None
        return self._value

    async def fresh(self) -> T:
        """A value computed from now on (the page after a change the user made)."""
        async with self._lock:
            await self._run()
        assert self._value is not None
        return self._value
