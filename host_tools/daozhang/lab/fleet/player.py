"""Play a run's timeline against the real processes, on time, and log what was applied.

The player knows only the `Target` protocol; the runner's target drives proxies, boards'
control channels, board power, the broker and the collectors. Every event is logged to
`timeline.jsonl` with the time it was planned for, the time it was applied and the business
time both stand for (the boards' clocks show it: `timebase.py`); an event that fails is logged
with its error and the run is marked failed (never skipped in silence).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from daozhang.lab.fleet.plan import Action, Event, LinkChange, LinkState
from daozhang.lab.fleet.timebase import Timebase


class Target(Protocol):
    def apply_link(self, board: int, state: LinkState) -> None: ...

    def act(self, action: Action) -> None: ...


@dataclass
class Player:
    events: list[Event]
    target: Target
    log_path: Path
    timebase: Timebase | None = None
    errors: list[str] = field(default_factory=list)
    applied: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, t0: float | None = None) -> Player:
        t0 = time.monotonic() if t0 is None else t0
        self._thread = threading.Thread(target=self._play, args=(t0,), name="timeline", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.join()

    def join(self, timeout: float | None = None) -> bool:
        """True once every event has been played (or the player was stopped)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _play(self, t0: float) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            for event in self.events:
                if self._stop.wait(max(0.0, t0 + event.t - time.monotonic())):
                    return
                row = describe(event, self.timebase)
                applied = time.monotonic() - t0
                row["applied_s"] = round(applied, 3)
                if self.timebase is not None:
                    row["applied_at"] = self.timebase.label(applied)
                try:
                    if isinstance(event, LinkChange):
                        self.target.apply_link(event.board, event.state)
                    else:
                        self.target.act(event)
                    self.applied += 1
                except Exception as exc:  # noqa: BLE001 -- logged and fails the run, see below
                    row["error"] = f"{type(exc).__name__}: {exc}"
                    self.errors.append(
                        f"{row['t']} s {row.get('action', 'link')} "
                        f"board {event.board}: {row['error']}"
                    )
                log.write(json.dumps(row) + "\n")
                log.flush()


def describe(e: Event, timebase: Timebase | None = None) -> dict[str, object]:
    """One event as a JSON row; with a timebase, `at` is its business time (HH:MM:SS)."""
    at = {} if timebase is None else {"at": timebase.label(e.t)}
    if isinstance(e, LinkChange):
        st = e.state
        return {
            "t": round(e.t, 3),
            **at,
            "board": e.board,
            "path": st.path,
            "link_up": st.link_up,
            "delay_ms": st.delay_ms,
            "jitter_ms": st.jitter_ms,
            "kbps": st.kbps,
            "loss_pct": st.loss_pct,
            "rssi": st.rssi,
            "rat": st.rat,
        }
    return {
        "t": round(e.t, 3),
        **at,
        "action": e.kind,
        "board": e.board,
        "target": e.target,
        "source": e.source,
    }
