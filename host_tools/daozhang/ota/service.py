"""The rollout service (`daozhang ota service`): drives every running rollout of the store until
it is done or halted, so that a rollout goes on without anyone's terminal open and after this
host restarts. Run it beside the collector under the same supervisor.

Every `poll_s` it reads which rollouts are running; each gets a thread of its own with its own
store connection and MQTT connection (`rollout.drive`, which keeps the rollout's state in the
store as it goes). A rollout created with `ota rollout --detach` is picked up at the next poll;
one whose thread ended on an error (broker away, store locked) is taken up again at the poll
after. Stopping (SIGTERM) leaves the rollouts running in the store, for the next start.

Each rollout has one driver at a time (its hold in the store, renewed every 2 s): a second
service on another host, as a spare, says once that another drives it and takes it over when
that hold lapses (`lease_s` after the first stopped renewing it).
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from daozhang.errors import DaozhangError
from daozhang.ota.lease import LEASE_S
from daozhang.ota.rollout import drive, running
from daozhang.store import Store


def log(message: str) -> None:
    sys.stderr.write(f"daozhang ota service: {message}\n")
    sys.stderr.flush()


@dataclass
class RolloutService:
    # A new connection to the store each time (its command hands it in): one for the poll and
    # one per rollout's thread, as a connection is not shared between threads.
    open_store: Callable[[], AbstractContextManager[Store]]
    broker: str
    tls_dir: str | None = None
    poll_s: float = 10.0
    lease_s: float = LEASE_S  # how long a driver gone silent holds a rollout (rollout.drive)
    say: Callable[[str], None] = log
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: dict[int, threading.Thread] = field(default_factory=dict)
    _failed: dict[int, str] = field(default_factory=dict)  # the last error said, per rollout

    def run(self) -> None:
        """Until `stop` is set; then waits for every rollout's thread to let go of it."""
        self.say(
            f"started: broker {self.broker}, a look for running rollouts every {self.poll_s:g} s"
        )
        try:
            with self.open_store() as store:
                while not self.stop.is_set():
                    for rid in running(store):
                        thread = self._threads.get(rid)
                        if thread is None or not thread.is_alive():
                            self._start(rid)
                    self.stop.wait(self.poll_s)
        finally:
            self.stop.set()
            for thread in self._threads.values():
                thread.join()
        self.say("stopped: the rollouts still running stay so in the store")

    def _start(self, rid: int) -> None:
        thread = threading.Thread(target=self._drive, args=(rid,), name=f"rollout-{rid}")
        self._threads[rid] = thread
        thread.start()

    def _drive(self, rid: int) -> None:
        try:
            with self.open_store() as store:
                r = drive(store, rid, self.broker, self.tls_dir, math.inf, self.stop,
                          self.lease_s, lambda: self.say(f"rollout {rid}: driving"))  # fmt: skip
        except DaozhangError as exc:
            # Said once per kind of error, not at every poll while the broker is away.
            if self._failed.get(rid) != str(exc):
                self.say(f"rollout {rid}: {exc}; trying again every {self.poll_s:g} s")
            self._failed[rid] = str(exc)
            return
        self._failed.pop(rid, None)
        if r.state != "running":
            why = f": {r.why}" if r.why else ""
            self.say(f"rollout {rid}: {r.state}{why}")
