"""A fleet update through faults (issue 27): virtual boards flashed with the host's version
update to the next one while their POS keep selling and the fault proxy drops links, resets
connections and restarts the broker.

The run is the chaos test's fleet (`daozhang.lab.fleet`: boards flashed with the real tool, a
fault proxy each, Mosquitto without persistence, the real collector, the POS simulators and
their ledgers) with `daozhang ota rollout --all --halt-at 0%` running beside the traffic (the
runner's `alongside`). `check()` says what was not met:
- every board confirmed on the new version: in the rollout's store, in its latest heartbeat
  (`fw`) and in its `ota confirmed` diagnostic; the rollout done, its command exited 0;
  progress said in 10 % steps (a board's `fetching N%` heartbeats stay few, not one a chunk);
- every fault kind of the scenario applied, and each cohort that began while faults ran was
  hit by at least one of them (on one of its boards, or the broker) during its download;
- the POS ledgers against the store by natural key: 0 lost, 0 duplicated, acked = sent;
  every transaction's cause as its ground truth says.

Used by `tests/ota/test_fleet_update_faults.py` (3 boards) and `bench/ota_fleet.py` (20)."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daozhang import __version__
from daozhang.flash.build import compilers
from daozhang.lab.fleet import scenario as scenario_mod
from daozhang.lab.fleet.runner import Beside, RunResult, run_scenario
from daozhang.lab.fleet.supervisor import Child
from daozhang.ota.bundle import make_bundle
from daozhang.schema import open_database

SCENARIO = Path(__file__).with_name("fleet_update.toml")
NEW_VERSION = "0.2.0"
PROGRESS_HEARTBEATS_MAX = 40
BOARD_FAULTS = ("reset", "power_cut", "blackhole", "link_down", "flap", "delay", "down")


def load_scenario(
    boards: int | None = None,
    duration_s: float | None = None,
    receipts: int | None = None,
    heap: str | None = None,
) -> scenario_mod.Scenario:
    """fleet_update.toml, scaled: `random:N` selections grow with the fleet (N of the file's
    3 boards), faults that would end past a shorter run are dropped."""
    raw: dict[str, Any] = tomllib.loads(SCENARIO.read_text())
    base = int(raw["boards"]["count"])
    if boards is not None:
        raw["boards"]["count"] = boards
        for fault in raw["faults"]:
            spec = fault.get("boards")
            if isinstance(spec, str) and spec.startswith("random:"):
                n = int(spec.removeprefix("random:"))
                fault["boards"] = f"random:{max(1, min(boards, round(n * boards / base)))}"
    if duration_s is not None:
        raw["duration_s"] = duration_s
    if receipts is not None:
        raw["boards"]["receipts_per_board"] = receipts
    if heap is not None:
        raw["boards"]["heapsize"] = heap
    return scenario_mod.parse(raw, SCENARIO)


@dataclass
class Cohort:
    index: int
    devs: list[str]
    start_s: float | None = None  # first seen offered (past `waiting`), from the traffic's start
    end_s: float | None = None  # the last of its devices seen confirmed
    hit_by: list[str] = field(default_factory=list)  # faults during its download

    def line(self) -> str:
        start = "-" if self.start_s is None else f"{self.start_s:.0f} s"
        end = "-" if self.end_s is None else f"{self.end_s:.0f} s"
        hits = ", ".join(self.hit_by) or "no fault"
        return f"cohort {self.index + 1} ({len(self.devs)} boards): {start} -> {end}; {hits}"


class RolloutJob:
    """`daozhang ota rollout BUNDLE --all --halt-at 0%` as a process of the run, and a watch
    on the store that notes when each device's state first changed (from the traffic's
    start), for the cohorts' download windows."""

    def __init__(self, beside: Beside, bundle: Path, cohorts: str, wait_s: float) -> None:
        self.beside = beside
        self.seen: dict[str, dict[str, float]] = {}  # dev -> state word -> first seen (s)
        self.cohort_of: dict[str, int] = {}
        tls = [] if beside.tls_dir is None else ["--tls-dir", str(beside.tls_dir)]
        argv = [
            sys.executable,
            "-m",
            "daozhang.cli",
            "ota",
            "rollout",
            str(bundle),
            "--all",
            "--cohorts",
            cohorts,
            "--halt-at",
            "0%",
            "--broker",
            beside.broker,
            "--db",
            beside.db_url,
            *tls,
            "--wait",
            f"{wait_s:g}",
        ]
        self.child: Child = beside.supervisor.spawn("ota-rollout", argv, env=beside.env)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rollout-watch", daemon=True)
        self._thread.start()
        beside.say(f"rollout started beside the traffic: cohorts {cohorts}, halt at 0%")

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self.look()

    def look(self) -> None:
        try:
            with open_database(self.beside.db_url, migrate=False) as store:
                rows = store.query("SELECT dev, cohort, state FROM ota_targets")
        except Exception:  # not created yet, or a busy store: look again
            return
        now = time.monotonic() - self.beside.t0
        for dev, cohort, state in rows:
            self.cohort_of[str(dev)] = int(cohort)
            word = str(state).split(" ", 1)[0]
            self.seen.setdefault(str(dev), {}).setdefault(word, now)

    def done(self) -> bool:
        if self.child.alive():
            return False
        self._stop.set()
        self._thread.join()
        self.look()
        return True

    def status(self) -> str:
        words = [max(s, key=lambda w: s[w]) for s in self.seen.values() if s]
        confirmed = words.count("confirmed")
        return f"update: {confirmed}/{len(self.beside.devices)} confirmed"


@dataclass
class FleetUpdate:
    run: RunResult
    boards: int
    faults_until_s: float  # the selling phase, when faults run: cohorts begun in it must be hit
    rollout_state: str = ""
    rollout_exit: int | None = None
    confirmed_store: int = 0  # targets confirmed on the new version in the rollout's store
    confirmed_heartbeat: int = 0  # latest heartbeat's fw is the new version
    confirmed_diag: int = 0  # an `ota confirmed` diagnostic of the new version
    rollout_s: float | None = None  # from the first offer to the last confirmation
    progress_heartbeats: int = 0  # the most `fetching N%` heartbeats one board sent
    cohorts: list[Cohort] = field(default_factory=list)
    kinds_planned: list[str] = field(default_factory=list)
    kinds_applied: list[str] = field(default_factory=list)
    sent: int = 0
    acked: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    causes_right: bool = False
    causes_line: str = ""
    run_s: float = 0.0

    def problems(self) -> list[str]:
        out = []
        n = self.boards
        if self.rollout_state != "done" or self.rollout_exit != 0:
            out.append(f"rollout {self.rollout_state or '?'}, exit {self.rollout_exit}")
        for what, got in (
            ("in the rollout's store", self.confirmed_store),
            ("by heartbeat fw", self.confirmed_heartbeat),
            ("by `ota confirmed` diagnostic", self.confirmed_diag),
        ):
            if got != n:
                out.append(f"{got} of {n} boards confirmed on {NEW_VERSION} {what}")
        # 11 steps of 10 % and the periodic ones; one per chunk was ~115 for the agent.
        if self.progress_heartbeats > PROGRESS_HEARTBEATS_MAX:
            out.append(f"{self.progress_heartbeats} progress heartbeats from one board")
        missing = sorted(set(self.kinds_planned) - set(self.kinds_applied))
        if missing:
            out.append(f"fault kinds never applied: {', '.join(missing)}")
        # The faults are random: a one-board cohort may download in the seconds between two
        # (cohort 1 took 6 s in a CI run). What must hold is that downloads were hit.
        under = [
            c for c in self.cohorts if c.start_s is not None and c.start_s < self.faults_until_s
        ]
        if under and not any(c.hit_by for c in under):
            out.append("the cohorts began under faults but no fault hit a download")
        bad = (self.lost, self.duplicated, self.unexpected) != (0, 0, 0)
        if bad or self.acked != self.sent or not self.sent:
            out.append(
                f"receipts: sent {self.sent}, acked {self.acked}, lost {self.lost},"
                f" duplicated {self.duplicated}, unexpected {self.unexpected}"
            )
        if self.run.timeline_errors:
            out.append("faults that failed: " + "; ".join(self.run.timeline_errors))
        if not self.causes_right:
            out.append("causes: " + (self.causes_line or "correlation did not match the truth"))
        return out

    def render(self) -> str:
        lines = [
            f"boards confirmed on {NEW_VERSION}: store {self.confirmed_store}, heartbeat fw"
            f" {self.confirmed_heartbeat}, `ota confirmed` diag {self.confirmed_diag}"
            f" (of {self.boards}); rollout {self.rollout_state}, exit {self.rollout_exit}",
            "rollout time (first offer to last confirmation): "
            + ("-" if self.rollout_s is None else f"{self.rollout_s:.0f} s")
            + f"; at most {self.progress_heartbeats} progress heartbeats from one board",
            *self.cohorts_lines(),
            f"fault kinds applied: {', '.join(sorted(self.kinds_applied))}",
            f"receipts: sent {self.sent}, acked {self.acked}, lost {self.lost},"
            f" duplicated {self.duplicated}",
            f"causes right: {'yes' if self.causes_right else 'NO'} ({self.causes_line})",
            f"run: {self.run_s:.0f} s",
        ]
        return "\n".join(lines)

    def cohorts_lines(self) -> list[str]:
        return ["  " + c.line() for c in self.cohorts]


# How the timeline shows a board fault at work (plan.py): its action, or its link state.
_SHOWS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "reset": lambda r: r.get("action") == "reset",
    "power_cut": lambda r: r.get("action") == "power_cut",
    "blackhole": lambda r: r.get("path") == "blackhole",
    "flap": lambda r: r.get("path") == "down",
    "link_down": lambda r: r.get("link_up") is False,
    "delay": lambda r: bool(r.get("delay_ms")),
    "bandwidth": lambda r: bool(r.get("kbps")),
}


def _fault_windows(
    scenario: scenario_mod.Scenario, timeline: list[dict[str, Any]]
) -> tuple[list[tuple[str, float, float, frozenset[str]]], set[str]]:
    """Each fault the timeline shows applied (without an error, within its time): (kind,
    from s, until s, the devices it hit; all of them for the broker), and the kinds."""
    rows = [r for r in timeline if "error" not in r]
    devs = [d.dev for d in scenario.devices]
    windows = []
    kinds: set[str] = set()
    for f in scenario.faults:
        until = max(f.until_s, f.at_s + 1.0)  # a reset's effect: the reconnection after it
        during = [r for r in rows if f.at_s - 0.001 <= float(r["t"]) <= f.until_s + 0.001]
        if f.on_host:
            action = "broker_stop" if f.kind == "broker_restart" else "collector_kill"
            hit = {d for r in during if r.get("action") == action for d in devs}
        else:
            shows = _SHOWS.get(f.kind, lambda r: True)
            hit = {
                devs[int(r["board"])] for r in during if r.get("board", -1) in f.boards and shows(r)
            }
        if hit:
            kinds.add(f.kind)
            windows.append((f.kind, f.at_s, until, frozenset(hit)))
    return windows, kinds


def run_update(
    out: Path,
    boards: int | None = None,
    cohorts: str = "33,100",
    duration_s: float | None = None,
    receipts: int | None = None,
    progress: Callable[[str], None] = print,
    heap: str | None = None,
) -> FleetUpdate:
    """Build the next version's bundle, run the scenario with the rollout beside it, and
    gather what `FleetUpdate.problems()` judges."""
    started = time.monotonic()
    scenario = load_scenario(boards, duration_s, receipts, heap)
    out.mkdir(parents=True, exist_ok=True)
    bundle = out / f"agent-{NEW_VERSION}.dzb"
    bundle.write_bytes(make_bundle(NEW_VERSION, "virtual", compilers()[0], __version__))
    progress(f"bundle {bundle.name}: {bundle.stat().st_size} bytes, {__version__} -> {NEW_VERSION}")
    jobs: list[RolloutJob] = []

    def alongside(beside: Beside) -> RolloutJob:
        jobs.append(RolloutJob(beside, bundle, cohorts, scenario.duration_s + 600))
        return jobs[0]

    run_dir = out / "run"
    result = run_scenario(scenario, run_dir, progress, alongside=alongside)
    update = FleetUpdate(result, len(scenario.devices), scenario.duration_s)
    update.rollout_exit = jobs[0].child.process.returncode
    by_cohort = _read_store(update, result.db_url or f"sqlite:///{run_dir / 'daozhang.db'}")
    timeline = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines()]
    windows, kinds = _fault_windows(scenario, timeline)
    update.kinds_planned = sorted({f.kind for f in scenario.faults})
    update.kinds_applied = sorted(kinds)
    update.cohorts = [
        _cohort(index, sorted(by_cohort[index]), jobs[0].seen, windows)
        for index in sorted(by_cohort)
    ]
    first = [c.start_s for c in update.cohorts if c.start_s is not None]
    last = [c.end_s for c in update.cohorts if c.end_s is not None]
    if first and len(last) == len(update.cohorts):
        update.rollout_s = max(last) - min(first)
    check = result.invariants
    if check is not None:
        update.sent, update.acked = check.total("sent"), check.total("acked")
        update.lost, update.duplicated = check.total("lost"), check.total("duplicated")
        update.unexpected = check.total("unexpected")
    said = [line.strip() for line in result.summary if "MISMATCH" in line or "every tr" in line]
    update.causes_right = said == ["every transaction got the cause its ground truth says"]
    update.causes_line = "; ".join(said)
    update.run_s = time.monotonic() - started
    return update


def _read_store(update: FleetUpdate, db_url: str) -> dict[int, list[str]]:
    """The rollout's state, each board's confirmation three ways; -> the devices by cohort."""
    with open_database(db_url, migrate=False) as store:
        (state,) = store.query("SELECT state FROM ota_rollouts ORDER BY id DESC LIMIT 1")[0]
        targets = store.query("SELECT dev, cohort, state, fw FROM ota_targets")
        latest = store.query(
            "SELECT h.dev, h.fw FROM heartbeats h WHERE h.id ="
            " (SELECT MAX(id) FROM heartbeats WHERE dev = h.dev)"
        )
        progress = store.query(
            "SELECT COUNT(*) FROM heartbeats WHERE body_json LIKE '%fetching %' GROUP BY dev"
        )
        diags = [
            (dev, json.loads(body))
            for dev, body in store.query("SELECT dev, body_json FROM diag_events WHERE ev = 'ota'")
        ]
    update.rollout_state = str(state)
    update.progress_heartbeats = max((int(n) for (n,) in progress), default=0)
    update.confirmed_store = sum(
        1 for _, _, st, fw in targets if st == "confirmed" and fw == NEW_VERSION
    )
    update.confirmed_heartbeat = sum(1 for _, fw in latest if fw == NEW_VERSION)
    update.confirmed_diag = len(
        {dev for dev, b in diags if b.get("st") == "confirmed" and b.get("ver") == NEW_VERSION}
    )
    by_cohort: dict[int, list[str]] = {}
    for dev, cohort, _, _ in targets:
        by_cohort.setdefault(int(cohort), []).append(str(dev))
    return by_cohort


def _cohort(
    index: int,
    devs: list[str],
    seen: dict[str, dict[str, float]],
    windows: list[tuple[str, float, float, frozenset[str]]],
) -> Cohort:
    """A cohort's download window (its first offer seen to its last confirmation) and the
    faults that hit one of its boards, or the broker, meanwhile."""
    c = Cohort(index, devs)
    offered = [t for d in devs for w, t in seen.get(d, {}).items() if w != "waiting"]
    confirmed = [seen.get(d, {}).get("confirmed") for d in devs]
    c.start_s = min(offered) if offered else None
    if all(t is not None for t in confirmed):
        c.end_s = max(t for t in confirmed if t is not None)
    if c.start_s is not None:
        end = c.end_s if c.end_s is not None else math.inf
        c.hit_by = sorted(
            {k for k, t0, t1, hit in windows if t0 <= end and t1 >= c.start_s and hit & set(devs)}
        )
    return c
