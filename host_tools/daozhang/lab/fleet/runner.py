"""`sim run`: a whole fleet on one machine, from a scenario (docs/simulation.md).

The run's shape lives here: output folder, supervisor, broker, collectors, one proxy and one
board per device, POS simulators, the timeline, the drain, settlement, correlation and the
invariant. What each part *is* comes from the components that build it (the agent, the POS
simulator, the proxy, the collector, the generator, correlation), reached only through
`daozhang.lab.fleet.wiring`. `missing_parts()` names any this build lacks, and the run refuses to
start without them rather than simulate them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from daozhang.errors import DaozhangError, UsageError
from daozhang.lab.board.manager import VirtualBoard
from daozhang.lab.fleet import invariants, linkpath, plan
from daozhang.lab.fleet.netem import Namespace
from daozhang.lab.fleet.player import Player, describe
from daozhang.lab.fleet.scenario import Scenario
from daozhang.lab.fleet.supervisor import Supervisor
from daozhang.lab.fleet.target import BoardSlot, FleetTarget, LinkPath, ServiceSlot
from daozhang.lab.fleet.timebase import Timebase
from daozhang.paths import FIRMWARE
from daozhang.ports import free_port

# (what, how to tell it is present, the component that provides it)
PARTS: list[tuple[str, str, str]] = [
    (
        "the agent's journal and intake (firmware/dzcore/journal/, firmware/dzcore/intake/)",
        "firmware:dzcore/journal/journal.py,dzcore/intake/intake.py",
        "journal",
    ),
    ("the POS simulator library (daozhang.lab.pos)", "module:daozhang.lab.pos", "journal"),
    (
        "the agent's uploader (firmware/dzcore/uplink/uploader.py)",
        "firmware:dzcore/uplink/uploader.py",
        "uplink",
    ),
    ("firmware/main.py starting the agent (intake, journal, uplink)", "main:Agent", "uplink"),
    (
        "the fault-injecting proxy (daozhang.lab.faults.proxy)",
        "module:daozhang.lab.faults.proxy",
        "uplink",
    ),
    ("the collector (daozhang.collector)", "module:daozhang.collector", "collector"),
    ("flashing (daozhang.flash)", "module:daozhang.flash", "flash"),
    ("the scenario generator (daozhang.lab.sim)", "module:daozhang.lab.sim", "settle"),
    ("correlation (daozhang.correlate)", "module:daozhang.correlate", "settle"),
]

Progress = Callable[[str], None]


class Job(Protocol):
    """Work that runs beside the traffic (`run_scenario(alongside=...)`), e.g. a fleet update:
    the traffic phase ends when the POS, the timeline and the job are all done."""

    def done(self) -> bool: ...

    def status(self) -> str: ...


@dataclass(frozen=True)
class Beside:
    """What a job beside the traffic is given when the traffic starts."""

    supervisor: Supervisor  # start its processes here: they are stopped with the run's
    broker: str  # the broker's URL, as the host's tools reach it (no fault proxy)
    tls_dir: Path | None  # with TLS: an identity of the operator's tools (`FleetTls.tool_dir`)
    db_url: str
    devices: list[str]
    t0: float  # time.monotonic() at the start of traffic, the timeline's zero
    env: dict[str, str]
    say: Progress


Alongside = Callable[[Beside], Job]


def _present(probe: str) -> bool:
    kind, _, what = probe.partition(":")
    if kind == "firmware":
        return all((FIRMWARE / name).is_file() for name in what.split(","))
    if kind == "main":
        main = FIRMWARE / "main.py"
        return main.is_file() and what in main.read_text()
    try:
        return importlib.util.find_spec(what) is not None
    except ModuleNotFoundError:
        return False


def missing_parts() -> list[str]:
    return [f"{what} [{branch}]" for what, probe, branch in PARTS if not _present(probe)]


@dataclass
class RunResult:
    ok: bool
    out: Path
    invariants: invariants.CheckResult | None = None
    timeline_errors: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    report: Path | None = None
    db_url: str | None = None  # the store the run filled; it stays for a look afterwards


def prepare_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out}: folder exists and is not empty; give a new one")
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "images", "state", "settlement"):
        (out / sub).mkdir()


def run_scenario(
    scenario: Scenario,
    out: Path,
    progress: Progress = print,
    alongside: Alongside | None = None,
) -> RunResult:
    missing = missing_parts()
    if missing:
        raise DaozhangError(
            "sim run cannot start: this build lacks "
            + "; ".join(missing)
            + ". Nothing is simulated in their place."
        )
    if scenario.mode == "netem":
        from daozhang.lab.fleet.netem import preflight

        needs = any(
            d.link.delay_ms or d.link.jitter_ms or d.link.loss_pct for d in scenario.devices
        ) or any(f.kind in ("delay", "loss") for f in scenario.faults)
        preflight(need_netem=needs)
    prepare_out(out)
    shutil.copyfile(scenario.path, out / "scenario.toml")
    events = plan.schedule(scenario)
    timebase = Timebase.of(scenario)
    with (out / "plan.jsonl").open("w") as f:
        for e in events:
            f.write(json.dumps(describe(e, timebase)) + "\n")
    return _Run(scenario, out, events, progress, alongside).execute()


@dataclass
class _Run:
    scenario: Scenario
    out: Path
    events: list[plan.Event]
    progress: Progress
    alongside: Alongside | None = None
    collectors: list[ServiceSlot] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.progress(text)

    def execute(self) -> RunResult:
        from daozhang.lab.fleet import wiring
        from daozhang.lab.sim.fleet import Day, fleet_world

        s, out = self.scenario, self.out
        db_url = f"sqlite:///{out / 'daozhang.db'}" if s.db == "sqlite" else s.db
        result = RunResult(ok=False, out=out)
        day = Day(s.day.date, _seconds(s.day.open_hhmm), _seconds(s.day.close_hhmm), s.duration_s)
        outages = {d.dev: plan.outages(self.events, d.index, s.duration_s) for d in s.devices}
        world = fleet_world(
            s.seed,
            [d.dev for d in s.devices],
            day,
            s.receipts_per_board,
            outages,
            s.settlement_causes,
            s.no_response_pct,
            s.full_pan_pct,
        )
        n_frames = sum(len(f) for f in world.frames.values())
        self.say(
            f"generated the business day: {n_frames} receipts on {len(s.devices)} "
            f"terminals, {len(world.scenario.truth)} transactions with a known outcome"
        )
        with (
            Supervisor(out / "logs", reap_orphans=True) as sup,
            wiring.Session(s, out, sup, world) as session,
        ):
            # Boards are managed under the run's own state folder, not the user's.
            session.use_state_dir(out / "state")
            spaces: list[Namespace | None] = [None] * len(s.devices)
            port = free_port()
            if s.mode == "netem":
                made = linkpath.netem_namespaces(list(s.devices), sup, f"{os.getpid() % 100000}")
                spaces = list[Namespace | None](made)
                self.say(f"netem mode: {len(made)} network namespaces, veth pairs, tc shaping")
            security = "TLS, a certificate per device" if s.broker_tls else "plain TCP"
            self.say(
                f"starting Mosquitto ({security}; persistence "
                f"{'on' if s.broker_persistence else 'off'})"
            )
            broker = session.start_broker(port, [ns for ns in spaces if ns is not None])
            sup.adopt("mosquitto", broker.stop)
            collectors = [
                ServiceSlot(
                    f"collector{i}",
                    session.collector_argv(broker, db_url, i),
                    sup,
                    env=session.env(),
                )
                for i in range(s.collectors)
            ]
            for c in collectors:
                c.start()
            session.wait_store_ready(db_url)
            self.say(f"{len(collectors)} collector(s) on {db_url}")
            paths = [
                session.open_path(device, broker)
                if ns is None
                else linkpath.open_netem_path(ns, broker, sup)
                for device, ns in zip(s.devices, spaces, strict=True)
            ]
            slots = [
                BoardSlot(
                    device,
                    VirtualBoard.named(device.dev),
                    out / "images" / f"{device.dev}.img",
                    s.flash_size,
                    heapsize=s.heapsize,
                    autostart=True,
                    namespace=ns,
                )
                for device, ns in zip(s.devices, spaces, strict=True)
            ]
            timebase = Timebase.of(s)
            for slot in slots:
                sup.adopt(f"board {slot.device.dev}", _power_cut(slot.board))
                # On the business day from the first power-on, before its open (timebase.py).
                slot.set_clock(timebase.setup_clock(time.time()))
            self.say(f"flashing {len(slots)} virtual boards with the real tool (mpremote)")
            session.provision(slots, paths, db_url, self.say)
            self.say(f"{len(slots)} boards running the agent, each behind its own proxy")
            target = FleetTarget(slots, broker, collectors, list[LinkPath | None](paths))
            for slot, path in zip(slots, paths, strict=True):
                state = plan.base_state(slot.device)
                slot.show(state)
                path.apply(state)
            # One start for the POS, the timeline and the boards' clocks: the open.
            t0, host_t0 = time.monotonic(), time.time()
            for slot in slots:
                slot.set_clock(timebase.traffic_clock(host_t0))
            pos = session.start_pos(slots, self.events, t0)
            player = Player(self.events, target, out / "timeline.jsonl", timebase).start(t0)
            self.say(
                f"traffic: {n_frames} receipts over {s.duration_s:g} s "
                f"(business day x{s.time_scale:.0f} on the boards' clocks too), "
                f"{len(self.events)} timeline events"
            )
            job = None
            if self.alongside is not None:
                job = self.alongside(
                    Beside(
                        sup,
                        broker.url,
                        session.tool_dir(),
                        db_url,
                        [d.dev for d in s.devices],
                        t0,
                        session.env(),
                        self.say,
                    )
                )
            self.collectors = collectors
            self._wait(
                lambda: player.join(0) and pos.done() and (job is None or job.done()),
                s.duration_s * 3 + 60 + (s.drain_s if job is not None else 0),
                t0,
                lambda: (
                    f"{pos.status()}; stored {session.stored_count(db_url)}; "
                    f"events {player.applied}/{len(self.events)}"
                    + ("" if job is None else f"; {job.status()}")
                ),
            )
            player.stop()
            result.timeline_errors = player.errors
            drain_at = time.time()
            for slot in slots:
                slot.set_clock(timebase.drain_clock(host_t0, drain_at))
            self.say(
                "drain: faults cleared, boards' clocks at real rate from "
                f"{timebase.label(drain_at - host_t0)}; waiting for every acked receipt to be "
                "stored"
            )
            truth = pos.ledger()
            started = time.monotonic()
            said = 0.0
            while time.monotonic() < started + s.drain_s:
                check = invariants.check(truth, session.stored(db_url))
                if check.total("lost") == 0:
                    break
                self._watch()
                if time.monotonic() - said >= 5:
                    self.say(f"  drain: {check.total('lost')} acked receipts not stored yet")
                    said = time.monotonic()
                time.sleep(1)
            self.say(f"drain took {time.monotonic() - started:.0f} s")
            pos.stop()
            result.timeline_errors += pos.errors()
            invariants.write_truth(out / "truth.jsonl", truth)
        # Every process is stopped: the store is final.
        check = invariants.check(truth, session.stored(db_url))
        result.invariants = check
        (out / "invariants.txt").write_text(invariants.render(check) + "\n")
        self.say("invariant (POS acks vs store):\n" + invariants.render(check, only_problems=True))
        self.say("settlement files from the generator, import, correlation")
        summary, report = session.settle_and_correlate(db_url)
        result.summary, result.report, result.db_url = summary, report, db_url
        for line in summary:
            self.say(line)
        if report is not None:
            self.say(f"HTML report: {report}")
        result.ok = check.valid and not result.timeline_errors and session.causes_ok
        if result.timeline_errors:
            self.say("timeline events that failed:\n  " + "\n  ".join(result.timeline_errors))
        return result

    def _watch(self) -> None:
        for c in self.collectors:
            note = c.watch()
            if note:
                self.say(note)
                self.restarts.append(note)

    def _wait(
        self, done: Callable[[], bool], limit_s: float, t0: float, status: Callable[[], str]
    ) -> None:
        last = 0.0
        while not done():
            now = time.monotonic()
            if now - t0 > limit_s:
                raise DaozhangError(f"traffic phase still running after {limit_s:g} s")
            if now - last >= 5:
                self.say(f"[{now - t0:5.0f} s] {status()}")
                last = now
            self._watch()
            time.sleep(0.25)


def _power_cut(board: VirtualBoard) -> Callable[[], object]:
    return lambda: board.stop(power_cut=True)


def _seconds(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600 + int(minutes) * 60
