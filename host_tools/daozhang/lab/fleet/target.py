"""What the timeline acts on: boards (power, control channel), proxies, broker, collectors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from daozhang.broker.mosquitto import Mosquitto
from daozhang.errors import DaozhangError
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.fleet.netem import Namespace
from daozhang.lab.fleet.plan import Action, LinkState
from daozhang.lab.fleet.scenario import Device
from daozhang.lab.fleet.supervisor import Child, Supervisor

T = TypeVar("T")


class LinkPath(Protocol):
    """One board's fault-injecting proxy, as the runner drives it."""

    def apply(self, state: LinkState) -> None: ...

    def reset(self) -> None: ...


@dataclass
class BoardSlot:
    device: Device
    board: VirtualBoard
    image: Path
    flash_size: int
    heapsize: str = "64K"
    autostart: bool = True
    dev: bool = False  # False: run what is flashed on the image, as a real board does
    namespace: Namespace | None = None  # netem mode: the board's own network namespace

    def inside(self, fn: Callable[[], T]) -> T:
        """Run `fn` where the board lives (its namespace in netem mode): what it starts too."""
        return fn() if self.namespace is None else self.namespace.call(fn)

    def power_on(self) -> None:
        self.inside(
            lambda: self.board.start(
                self.image,
                self.flash_size,
                heapsize=self.heapsize,
                autostart=self.autostart,
                dev=self.dev,
            )
        )

    def power_cut(self) -> None:
        self.board.stop(power_cut=True)

    def set_clock(self, clock: Mapping[str, float]) -> None:
        """The board's clock (RTC and NTP), through its control channel: `t` at host time
        `at`, `rate` board seconds per real second (daozhang.lab.fleet.timebase)."""
        self.board.set_clock(clock["t"], clock["rate"], clock["at"])

    def show(self, state: LinkState) -> None:
        """What the board's own link and signal report (its control channel)."""
        control = self.board.control()
        control["link"] = "up" if state.link_up else "down"
        control["signal"] = {**control.get("signal", {}), "rat": state.rat, "rssi": state.rssi}
        self.board.write_control(control)


@dataclass
class ServiceSlot:
    """A host process the timeline kills and restarts (a collector)."""

    name: str
    argv: Sequence[str]
    supervisor: Supervisor
    env: dict[str, str] | None = None
    child: Child | None = None
    starts: int = 0
    killed: bool = False  # by the timeline, on purpose: not restarted until it says so
    # The timeline (its thread) and the run's watch (the main one) both start and stop it.
    lock: threading.RLock = field(default_factory=threading.RLock)

    def start(self) -> Child:
        with self.lock:
            return self._start()

    def _start(self) -> Child:
        if self.child is not None and self.child.alive():
            raise DaozhangError(f"{self.name} is already running (pid {self.child.pid})")
        self.starts += 1
        self.killed = False
        self.child = self.supervisor.spawn(f"{self.name}.{self.starts}", self.argv, env=self.env)
        return self.child

    def kill(self) -> None:
        with self.lock:
            self._kill()

    def _kill(self) -> None:
        if self.child is None or not self.child.alive():
            raise DaozhangError(f"{self.name} is not running: nothing to kill")
        self.killed = True
        self.child.stop(kill=True)
        self.supervisor.forget(self.child)

    def watch(self) -> str | None:
        """Restart the process if it exited on its own (as systemd's Restart=always would);
        returns what happened, for the run's log, or None."""
        with self.lock:
            if self.killed or self.child is None or self.child.alive():
                return None
            status, log = self.child.process.returncode, self.child.log
            self.supervisor.forget(self.child)
            self._start()
        return f"{self.name} exited by itself (status {status}; see {log}); restarted"


@dataclass
class FleetTarget:
    boards: list[BoardSlot]
    broker: Mosquitto
    collectors: list[ServiceSlot]
    paths: list[LinkPath | None]

    def apply_link(self, board: int, state: LinkState) -> None:
        self.boards[board].show(state)
        path = self.paths[board]
        if path is not None:
            path.apply(state)

    def act(self, action: Action) -> None:
        kind = action.kind
        if kind == "reset":
            path = self.paths[action.board]
            if path is None:
                raise DaozhangError("reset needs a proxy in front of the board")
            path.reset()
        elif kind == "power_cut":
            self.boards[action.board].power_cut()
        elif kind == "power_on":
            self.boards[action.board].power_on()
        elif kind == "broker_stop":
            self.broker.stop(kill=True)  # SIGKILL: with persistence off, queued messages are gone
        elif kind == "broker_start":
            self.broker.start()
        elif kind == "collector_kill":
            self.collectors[action.target].kill()
        elif kind == "collector_start":
            self.collectors[action.target].start()
        else:
            raise DaozhangError(f"unknown action {kind!r}")
