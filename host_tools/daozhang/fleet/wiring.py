"""The one place where the fleet run meets the other components' APIs.

`Session` hands the runner what it needs from the collector (its command line, its tables),
the proxy, the agent's configuration, the POS simulators, the generator and correlation.
Methods whose component has not landed in this build raise `DaozhangError` naming it; the
runner checks `missing_parts()` first, so a run never reaches them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol

from daozhang.errors import DaozhangError, StoreError
from daozhang.fleet import invariants, plan
from daozhang.fleet.scenario import Device, Scenario
from daozhang.fleet.supervisor import Supervisor
from daozhang.fleet.target import BoardSlot, LinkPath
from daozhang.services.mosquitto import Mosquitto
from daozhang.store import open_store


class PosFleet(Protocol):
    """The POS simulators of a run, one per board."""

    def done(self) -> bool: ...

    def status(self) -> str: ...

    def ledger(self) -> list[invariants.Sent]: ...

    def stop(self) -> None: ...


def _not_landed(what: str, branch: str) -> DaozhangError:
    return DaozhangError(f"fleet wiring: {what} is not in this build (branch {branch})")


class Session:
    def __init__(self, scenario: Scenario, out: Path, supervisor: Supervisor) -> None:
        self.scenario, self.out, self.supervisor = scenario, out, supervisor
        self.causes_ok = False
        self._saved_state: str | None = None

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._saved_state is None:
            os.environ.pop("DAOZHANG_STATE", None)
        else:
            os.environ["DAOZHANG_STATE"] = self._saved_state

    def use_state_dir(self, path: Path) -> None:
        self._saved_state = os.environ.get("DAOZHANG_STATE")
        os.environ["DAOZHANG_STATE"] = str(path)

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    # --- collector (issue 5's command line and interfaces C) ---------------------------

    def collector_argv(self, broker: Mosquitto, db_url: str, index: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "daozhang.cli",
            "collect",
            "--broker",
            broker.url,
            "--db",
            db_url,
            "--group",
            "fleet",
        ]

    def wait_store_ready(self, db_url: str, timeout_s: float = 30) -> None:
        """The collectors create the schema; wait until its `records` table is there."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.stored_count(db_url)
                return
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stored(self, db_url: str) -> list[invariants.Stored]:
        with open_store(db_url, migrate=False) as store:
            return list(invariants.stored_receipts(store))

    def stored_count(self, db_url: str) -> int:
        return len(self.stored(db_url))

    # --- parts of other branches ----------------------------------------------------------

    def open_path(self, device: Device, broker: Mosquitto) -> LinkPath:
        raise _not_landed("the fault-injecting proxy", "uplink")

    def provision(self, slot: BoardSlot, path: LinkPath) -> None:
        raise _not_landed("the agent's configuration on a board", "uplink/flash")

    def start_pos(self, slots: list[BoardSlot], events: list[plan.Event]) -> PosFleet:
        raise _not_landed("the POS simulator", "journal")

    def settle_and_correlate(
        self, db_url: str, truth: list[invariants.Sent], events: list[plan.Event]
    ) -> tuple[list[str], Path | None]:
        raise _not_landed("settlement generation and correlation", "settle")
