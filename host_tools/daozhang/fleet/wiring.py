"""The one place where the fleet run meets the other components' APIs.

`Session` hands the runner what it needs from the collector (its command line, its tables),
the fault proxy, the flashing tool, the POS simulators, the generator and correlation. A
method whose component has not landed in this build raises `DaozhangError` naming it; the
runner checks `missing_parts()` first, so a run never reaches one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

from daozhang.errors import DaozhangError, StoreError
from daozhang.faults.proxy import FaultProxy
from daozhang.fleet import invariants, plan
from daozhang.fleet.linkpath import ProxyPath, broker_listeners
from daozhang.fleet.netem import Namespace
from daozhang.fleet.scenario import Device, Scenario
from daozhang.fleet.supervisor import Supervisor
from daozhang.fleet.target import BoardSlot
from daozhang.fleet.terminals import PosFleet, Terminals
from daozhang.security.fleet import FleetTls
from daozhang.security.pki import Pki
from daozhang.services.mosquitto import Mosquitto
from daozhang.settle.rows import BEIJING
from daozhang.sim.fleet import FleetWorld, import_settlement
from daozhang.store import open_store

FLASH_HEAP = "256K"
FLASH_PARALLEL = 4  # mpremote sessions at once: the machine has 2 cores


def _last_words(slot: BoardSlot) -> str:
    """The end of a board's console errors and how its last process ended, for a failure."""

    def tail(name: str, size: int) -> str:
        try:
            return (slot.board.root / name).read_text(errors="replace")[-size:].strip()
        except OSError:
            return ""

    ended = tail("relay.log", 200).rpartition("\n")[2]
    return f"board log ends {tail('board.log', 300)!r}; relay: {ended or 'no exit logged'}"


def _after_listener(lines: list[str]) -> list[str]:
    """The settings that follow the first `listener` line (that listener's TLS options)."""
    for i, line in enumerate(lines):
        if line.startswith("listener "):
            rest = lines[i + 1 :]
            end = next((j for j, x in enumerate(rest) if x.startswith("listener ")), len(rest))
            return rest[:end]
    return []


def _accepts(slot: BoardSlot) -> bool:
    port = slot.board.terminal_port
    if port is None:
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _not_landed(what: str, branch: str) -> DaozhangError:
    return DaozhangError(f"fleet wiring: {what} is not in this build (branch {branch})")


class Session:
    def __init__(
        self, scenario: Scenario, out: Path, supervisor: Supervisor, world: FleetWorld
    ) -> None:
        self.scenario, self.out, self.supervisor, self.world = scenario, out, supervisor, world
        self.causes_ok = False
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
            self.tls = FleetTls.create(
                self.out / "pki",
                [d.dev for d in s.devices],
                collectors=[f"fleet{i}" for i in range(s.collectors)],
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
        with open_store(db_url, migrate=False) as store:
            return list(invariants.stored_receipts(store))

    def stored_count(self, db_url: str) -> int:
        with open_store(db_url, migrate=False) as store:
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
        from daozhang.flash.deploy import Flasher, FlashOptions, FlashResult

        shared = Flasher(FlashOptions("virtual", None, "daozhang sim"), None)

        def flash(slot: BoardSlot, path: ProxyPath) -> FlashResult:
            # The flash tool's on-board probe and self-test need more than a 64K heap today;
            # the agent then runs with the scenario's heap (power cycle below).
            slot.board.start(slot.image, slot.flash_size, heapsize=FLASH_HEAP, dev=False)
            scheme = "mqtt" if self.pki is None else "mqtts"
            broker = f"{scheme}://127.0.0.1:{path.port}"  # through the board's own proxy
            tls: dict[str, Path] = {}
            if self.pki is not None:
                creds = self.pki.device_dir(slot.device.dev)
                tls = {
                    "ca": creds / "ca.pem",
                    "cert": creds / "client.crt",
                    "key": creds / "client.key",
                }
            flasher = Flasher(
                FlashOptions(
                    "virtual", broker, "daozhang sim", tls=tls, settings=dict(self.scenario.agent)
                ),
                lambda: open_store(db_url),
            )
            flasher.builds = shared.builds  # one compile for the whole fleet
            result = flasher.flash(str(slot.board.tty), slot.device.dev, lambda *a: None)
            if result.verdict != "fail":
                slot.power_cut()
                slot.power_on()
            return result

        def one(i: int) -> str | None:
            slot, path = slots[i], paths[i]
            # In netem mode the whole flash (its reboots too) happens in the board's namespace.
            result = slot.inside(lambda: flash(slot, path))
            if result.verdict == "fail":
                # What a technician does after a failed flash (a USB hiccup, mpremote timing
                # out on a loaded machine): power-cycle and flash again, once.
                slot.power_cut()
                result = slot.inside(lambda: flash(slot, path))
            if result.verdict == "fail":
                why = result.error or result.selftest
                return f"{slot.device.dev}: flash failed: {why} ({_last_words(slot)})"
            return None

        with ThreadPoolExecutor(FLASH_PARALLEL) as pool:
            problems = [p for p in pool.map(one, range(len(slots))) if p]
        if problems:
            raise DaozhangError("; ".join(problems))
        say(f"flashed {len(slots)} boards (firmware .mpy, config, per-device HMAC key)")
        self.wait_agents(slots)

    def wait_agents(self, slots: list[BoardSlot], timeout_s: float = 30) -> None:
        """Every agent must answer on its terminal link before the POS starts selling."""
        deadline = time.monotonic() + timeout_s
        waiting = list(slots)
        while waiting and time.monotonic() < deadline:
            waiting = [s for s in waiting if not s.inside(partial(_accepts, s))]
            time.sleep(0.2)
        if waiting:
            tails = []
            for s in waiting:
                tails.append(f"{s.device.dev} ({_last_words(s)})")
            raise DaozhangError(
                f"the agent does not serve its terminal link on {len(waiting)} board(s) after "
                f"{timeout_s:g} s: " + "; ".join(tails)
            )

    # --- POS simulators -----------------------------------------------------------------

    def start_pos(self, slots: list[BoardSlot], events: list[plan.Event]) -> PosFleet:
        fleet = Terminals(self.out / "pos", give_up_s=max(120.0, self.scenario.drain_s))
        for slot in slots:
            fleet.add(slot, self.world.frames.get(slot.device.dev, []))
        fleet.start()
        self.supervisor.adopt("POS simulators", fleet.stop)
        return fleet

    # --- settlement and correlation ------------------------------------------------------

    def settle_and_correlate(self, db_url: str) -> tuple[list[str], Path | None]:
        """Import the acquirers' files, run `daozhang correlate`, compare with the truth."""
        sc = self.world.scenario
        with open_store(db_url) as store:
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
        # The first table `daozhang correlate` prints: the summary by cause.
        summary = done.stdout.split("money not arrived")[0].rstrip()
        lines = [
            summary,
            f"imported {len(imported)} settlement files; `daozhang correlate --as-of "
            f'"{as_of}"`: {len(findings)} findings (table in correlate.txt)',
        ]
        lines.append(f"ground truth vs correlation, {len(sc.truth)} transactions:")
        lines += [f"  {cause:22} {n:6}" for cause, n in by_cause.most_common()]
        lines += [f"  MISMATCH {k}: {n}" for k, n in wrong.most_common()]
        if not wrong:
            lines.append("  every transaction got the cause its ground truth says")
        return lines, report
