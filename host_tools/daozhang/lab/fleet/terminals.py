"""The POS main boards of a run: one simulator thread per board, each sending its day's
frames on schedule over the board's terminal link (stop-and-wait, through power cuts), each
keeping a ledger of what it sent and the answer it got; the ledgers are the invariant
checker's record of what every POS was told."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from daozhang.errors import DaozhangError
from daozhang.lab.fleet import invariants
from daozhang.lab.fleet.target import BoardSlot
from daozhang.lab.pos.ledger import Ledger
from daozhang.lab.pos.link import TerminalLink
from daozhang.lab.pos.simulator import GaveUp, PosSimulator
from daozhang.lab.sim.fleet import Frame


class PosFleet(Protocol):
    """The POS simulators of a run, one per board."""

    def done(self) -> bool: ...

    def status(self) -> str: ...

    def ledger(self) -> list[invariants.Sent]: ...

    def errors(self) -> list[str]: ...

    def stop(self) -> None: ...


class _Terminal(threading.Thread):
    """One POS main board: sends its frames on schedule, stop-and-wait, through power cuts."""

    def __init__(
        self,
        slot: BoardSlot,
        frames: list[Frame],
        ledger: Path,
        give_up_s: float,
        t0: Callable[[], float],
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"pos-{slot.device.dev}", daemon=True)
        self.slot, self.frames, self.ledger_path = slot, frames, ledger
        self.give_up_s, self.t0, self.stopping = give_up_s, t0, stop
        self.done_frames = 0
        self.acked = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            if self.slot.namespace is not None:
                self.slot.namespace.enter()  # the POS is wired to its board: same network
            self._run()
        except Exception as exc:  # noqa: BLE001 -- reported by status() and fails the run
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        port = self.slot.board.terminal_port
        if port is None:
            raise DaozhangError(f"board {self.slot.device.dev} has no terminal link port")
        ledger = Ledger(self.ledger_path)
        pos = PosSimulator(TerminalLink(f"tcp:127.0.0.1:{port}"), ledger, give_up_s=self.give_up_s)
        try:
            for frame in self.frames:
                if self.stopping.wait(max(0.0, self.t0() + frame.at_s - time.monotonic())):
                    return
                try:
                    outcome = pos.send(dict(frame.body))
                except GaveUp:
                    pass  # unanswered: stays so in the ledger (outcome unknown)
                else:
                    self.acked += outcome.seq is not None
                self.done_frames += 1
            # What a POS does after a restart: send again whatever never got an answer.
            pos.resend_unanswered()
        finally:
            pos.link.close()
            ledger.close()


class Terminals:
    """The POS simulators of a run (daozhang.lab.pos), one thread each, ledgers in one folder."""

    def __init__(self, folder: Path, give_up_s: float) -> None:
        self.folder, self.give_up_s = folder, give_up_s
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._t0 = 0.0
        self.threads: list[_Terminal] = []

    def add(self, slot: BoardSlot, frames: list[Frame]) -> None:
        self.threads.append(
            _Terminal(
                slot,
                frames,
                self.folder / f"{slot.device.dev}.jsonl",
                self.give_up_s,
                lambda: self._t0,
                self._stop,
            )
        )

    def start(self, t0: float | None = None) -> None:
        """Start selling; frame times count from `t0` (time.monotonic(); default now), the
        run's one start of traffic."""
        self._t0 = time.monotonic() if t0 is None else t0
        for t in self.threads:
            t.start()

    def done(self) -> bool:
        return not any(t.is_alive() for t in self.threads)

    def errors(self) -> list[str]:
        return [f"POS {t.slot.device.dev}: {t.error}" for t in self.threads if t.error]

    def status(self) -> str:
        total = sum(len(t.frames) for t in self.threads)
        sent = sum(t.done_frames for t in self.threads)
        acked = sum(t.acked for t in self.threads)
        return f"POS sent {sent}/{total}, acked {acked}"

    def stop(self) -> None:
        """Stop selling. A POS blocked on a board that no longer answers is abandoned (its
        thread is a daemon): stopping never waits more than a few seconds."""
        self._stop.set()
        deadline = time.monotonic() + 5
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def ledger(self) -> list[invariants.Sent]:
        """Every receipt each POS sent and the answer it got, from the ledgers."""
        sent: list[invariants.Sent] = []
        for t in self.threads:
            if not t.ledger_path.exists():
                continue
            outcome: dict[int, tuple[str, int | None]] = {}
            bodies: dict[int, dict[str, Any]] = {}
            for event in Ledger.read(t.ledger_path):
                msg = int(event["id"])
                if event["ev"] == "sent":
                    bodies[msg] = event["body"]
                elif event["ev"] == "acked":
                    outcome[msg] = ("acked", int(event["seq"]))
                elif event["ev"] == "refused":
                    outcome[msg] = ("nak", None)
            for msg, body in sorted(bodies.items()):
                result, seq = outcome.get(msg, ("unknown", None))
                where = f"POS ledger {t.ledger_path}, id {msg}"
                sent.append(
                    invariants.Sent(
                        t.slot.device.dev,
                        invariants.receipt_key(body, where),
                        int(body["amt"]),
                        result,
                        seq,
                    )
                )
        return sent
