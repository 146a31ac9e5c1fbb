"""The one place where the fleet run meets the other components' APIs.

`Session` hands the runner what it needs from the collector (its command line, its tables),
the fault proxy, the flashing tool, the POS simulators, the generator and correlation. A
method whose component has not landed in this build raises `DaozhangError` naming it; the
runner checks `missing_parts()` first, so a run never reaches one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from daozhang.broker.mosquitto import Mosquitto
from daozhang.errors import DaozhangError, StoreError
from daozhang.lab.faults.proxy import FaultProxy
from daozhang.lab.fleet import evidence, invariants, plan
from daozhang.lab.fleet.linkpath import ProxyPath, broker_listeners
from daozhang.lab.fleet.netem import Namespace
from daozhang.lab.fleet.provision import provision_fleet
from daozhang.lab.fleet.scenario import Device, Scenario
from daozhang.lab.fleet.supervisor import Supervisor
from daozhang.lab.fleet.target import BoardSlot
from daozhang.lab.fleet.terminals import PosFleet, Terminals
from daozhang.lab.fleet.timebase import Timebase
from daozhang.lab.fleet.tls import FleetTls
from daozhang.lab.sim.fleet import FleetWorld, import_settlement
from daozhang.schema import open_database
from daozhang.security.pki import Pki
from daozhang.units import BEIJING


def _after_listener(lines: list[str]) -> list[str]:
    """The settings that follow the first `listener` line (that listener's TLS options)."""
    for i, line in enumerate(lines):
        if line.startswith("listener "):
            rest = lines[i + 1 :]
            end = next((j for j, x in enumerate(rest) if x.startswith("listener ")), len(rest))
            return rest[:end]
    return []


class Session:
    def __init__(
        self, scenario: Scenario, out: Path, supervisor: Supervisor, world: FleetWorld
    ) -> None:
        self.scenario, self.out, self.supervisor, self.world = scenario, out, supervisor, world
        self.causes_ok = False
        self.evidence = evidence.EvidenceCheck()
        self.tls: FleetTls | None = None
        self.pki: Pki | None = None
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

    def start_broker(self, port: int, spaces: list[Namespace]) -> Mosquitto:
        """Mosquitto on `port`: with TLS (the default), a fleet CA, a certificate per device
        and one per collector, identity from the certificate, ACLs by identity."""
        s = self.scenario
        extra = broker_listeners(spaces, port)
        listeners = None
        if s.broker_tls:
            # The boards' clocks stand on the business day, which may be in the past: their
            # certificates must already be valid then, as a real fleet's were on that day.
            self.tls = FleetTls.create(
                self.out / "pki",
                [d.dev for d in s.devices],
                collectors=[f"fleet{i}" for i in range(s.collectors)],
                valid_from=Timebase.of(s).earliest(),
            )
            self.pki = self.tls.pki
            listeners = self.tls.listeners(self.out / "broker")
            # netem mode: the same TLS listener again on each veth's host end.
            tls_block = _after_listener(listeners.lines(port))
            extra = [line for listen in extra for line in (listen, *tls_block)]
        return Mosquitto(
            self.out / "broker",
            port=port,
            persistence=s.broker_persistence,
            extra_config=extra,
            listeners=listeners,
        ).start()

    def tool_dir(self) -> Path | None:
        """With TLS, the `--tls-dir` of the operator's tools; None on plain TCP."""
        return None if self.tls is None else self.tls.tool_dir()

    def collector_argv(self, broker: Mosquitto, db_url: str, index: int) -> list[str]:
        # With TLS: the collectors' certificate, and batches must carry their device's MAC.
        tls = [] if self.tls is None else [*self.tls.collector_args(index), "--require-key"]
        # A fixed client id per collector: a restarted one resumes its broker session.
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
            "--name",
            f"fleet-collector{index}",
            *tls,
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
        with open_database(db_url, migrate=False) as store:
            return list(invariants.stored_receipts(store))

    def stored_count(self, db_url: str) -> int:
        with open_database(db_url, migrate=False) as store:
            try:
                with store.transaction() as tx:
                    return int(
                        tx.execute("SELECT COUNT(*) FROM records WHERE kind = ?", ("r",))[0][0]
                    )
            except Exception as exc:  # noqa: BLE001 -- sqlite3/psycopg errors before the schema
                raise StoreError(f"no records table yet: {exc}") from None

    # --- the board's path: a fault proxy in front of the broker ---------------------------

    def open_path(self, device: Device, broker: Mosquitto) -> ProxyPath:
        proxy = FaultProxy("127.0.0.1", broker.port).start()
        self.supervisor.adopt(f"proxy {device.dev}", proxy.stop)
        return ProxyPath(proxy)

    # --- flashing: the real tool, as a technician would ---------------------------------

    def provision(
        self,
        slots: list[BoardSlot],
        paths: list[ProxyPath],
        db_url: str,
        say: Callable[[str], None],
    ) -> None:
        provision_fleet(slots, paths, db_url, self.pki, dict(self.scenario.agent), say)

    # --- POS simulators -----------------------------------------------------------------

    def start_pos(
        self, slots: list[BoardSlot], events: list[plan.Event], t0: float | None = None
    ) -> PosFleet:
        fleet = Terminals(self.out / "pos", give_up_s=max(120.0, self.scenario.drain_s))
        for slot in slots:
            fleet.add(slot, self.world.frames.get(slot.device.dev, []))
        fleet.start(t0)
        self.supervisor.adopt("POS simulators", fleet.stop)
        return fleet

    # --- settlement and correlation ------------------------------------------------------

    def settle_and_correlate(self, db_url: str) -> tuple[list[str], Path | None]:
        """Import the acquirers' files, run `daozhang correlate`, compare with the truth."""
        sc = self.world.scenario
        with open_database(db_url) as store:
            imported = import_settlement(store, self.world, self.out / "settlement")
        as_of = datetime.fromtimestamp(sc.as_of, BEIJING).strftime("%Y-%m-%d %H:%M")
        findings_path, report = self.out / "findings.json", self.out / "report.html"
        argv = [
            sys.executable,
            "-m",
            "daozhang.cli",
            "correlate",
            "--db",
            db_url,
            "--as-of",
            as_of,
            "--json",
            str(findings_path),
            "--html",
            str(report),
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "110"}
        )
        (self.out / "correlate.txt").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise DaozhangError(f"daozhang correlate failed: {done.stderr.strip()}")
        findings = json.loads(findings_path.read_text())["findings"]
        got: dict[tuple[str, ...], dict[str, Any]] = {
            ("r", f["mid"], f["tid"], f["bat"], f["trc"]): f
            for f in findings
            if f["kind"] == "transaction"
        }
        by_cause: Counter[str] = Counter()
        wrong: Counter[str] = Counter()
        for key, truth in sc.truth.items():
            want = truth.cause or truth.status
            by_cause[want] += 1
            f = got.get(key)
            found = (f.get("cause") or f["status"]) if f else "(no finding)"
            if f is None or (f["status"], f.get("cause") or "") != (truth.status, truth.cause):
                wrong[f"{want} -> {found}"] += 1
        self.causes_ok = not wrong
        self.evidence = evidence.check(findings)
        # The first table `daozhang correlate` prints: the summary by cause.
        summary = done.stdout.split("money not arrived")[0].rstrip()
        lines = [
            summary,
            f"imported {len(imported)} settlement files; `daozhang correlate --as-of "
            f'"{as_of}"`: {len(findings)} findings (table in correlate.txt)',
            self.evidence.line(),
        ]
        lines.append(f"ground truth vs correlation, {len(sc.truth)} transactions:")
        lines += [f"  {cause:22} {n:6}" for cause, n in by_cause.most_common()]
        lines += [f"  MISMATCH {k}: {n}" for k, n in wrong.most_common()]
        if not wrong:
            lines.append("  every transaction got the cause its ground truth says")
        return lines, report
