"""Scenario files: what a fleet simulation runs, read from TOML and validated up front.

The format is documented in docs/simulation.md. Every mistake is reported with the file and
the TOML path of the value (`faults[2].boards`), before any process starts. The result is a
fully resolved plan: each board has its id and link profile, each fault its boards and its
times in seconds since the start of the traffic phase (repeats expanded).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daozhang.errors import InputError, UsageError
from daozhang.flash.settings import TUNABLE
from daozhang.lab.board.manager import parse_flash_size
from daozhang.lab.fleet.links import BUILTIN_LINKS, LinkProfile, read_link
from daozhang.lab.fleet.scenario_faults import Fault, read_faults
from daozhang.lab.fleet.toml_reader import TableReader

# DESIGN.md §2.2 causes that the settlement side of the generator injects (the network causes
# come from the boards themselves).
SETTLEMENT_CAUSES = (
    "timing",
    "file_missing",
    "account_problem",
    "risk_hold",
    "fee",
    "acquirer_side",
)
MODES = ("proxy", "netem")
_DEV_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Device:
    index: int
    dev: str  # the terminal serial, also the MQTT topic segment
    group: str
    link: LinkProfile


@dataclass(frozen=True)
class BusinessDay:
    """The simulated trading day; the POS clock runs it at `time_scale` x real time."""

    date: dt.date
    open_hhmm: str
    close_hhmm: str

    def seconds(self) -> int:
        def minutes(text: str) -> int:
            hours, mins = text.split(":")
            return int(hours) * 60 + int(mins)

        return (minutes(self.close_hhmm) - minutes(self.open_hhmm)) * 60


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    seed: int
    mode: str
    duration_s: float  # traffic phase, real seconds; every fault ends inside it
    drain_s: float  # after traffic: how long boards may take to upload everything
    day: BusinessDay
    flash_size: int
    heapsize: str
    receipts_per_board: int
    no_response_pct: float  # sales with no host response (besides those in outages)
    devices: tuple[Device, ...]
    faults: tuple[Fault, ...]
    broker_persistence: bool
    broker_tls: bool  # TLS with a certificate per device and per collector, ACLs by identity
    collectors: int
    db: str  # "sqlite" or a postgresql:// URL
    settlement_causes: Mapping[str, int]
    agent: Mapping[str, int] = field(default_factory=dict)
    # Card receipts the POS sends with the full PAN, as a non-compliant POS does: the agent
    # must mask them at intake, and the artefact scan after a run proves none got through.
    full_pan_pct: float = 0.0

    @property
    def time_scale(self) -> float:
        """Business seconds per real second for the POS clock and settlement dates."""
        return self.day.seconds() / self.duration_s

    @property
    def receipts(self) -> int:
        return self.receipts_per_board * len(self.devices)


def load(path: Path) -> Scenario:
    """Read and validate a scenario file; raises InputError naming file and key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"scenario {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"scenario {path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"scenario {path}: not valid TOML: {exc}") from None
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path) -> Scenario:
    top = TableReader(path, "", raw)
    name = top.text("name", path.stem)
    seed = top.integer("seed", 1, 0, 2**63 - 1)
    mode = top.text("mode", "proxy", MODES)
    duration_s = top.number("duration_s", 120, 5, 7 * 86400)
    drain_s = top.number("drain_s", 120, 1, 86400)

    day_r = top.sub("day")
    day = _business_day(day_r)
    day_r.done()

    boards_r = top.sub("boards")
    count = boards_r.integer("count", 1, 1, 500)
    flash_text = boards_r.text("flash_size", "4M")
    try:
        flash_size = parse_flash_size(flash_text)
    except UsageError as exc:
        raise boards_r.error("flash_size", str(exc).split(": ", 1)[-1]) from None
    heapsize = boards_r.text("heapsize", "64K")
    if not re.match(r"^\d+[KkMm]?$", heapsize):
        raise boards_r.error("heapsize", f"{heapsize!r}: expected a size like 64K")
    prefix = boards_r.text("prefix", "dz")
    if not _DEV_PREFIX.match(prefix):
        raise boards_r.error("prefix", f"{prefix!r}: use letters, digits, '_' or '-'")
    per_board = boards_r.integer("receipts_per_board", 100, 0, 10_000_000)
    no_response_pct = boards_r.number("no_response_pct", 0.5, 0, 100)
    full_pan_pct = boards_r.number("full_pan_pct", 0.0, 0, 100)
    default_link = boards_r.text("link", "good")
    boards_r.done()

    links = dict(BUILTIN_LINKS)
    links_r = top.sub("links")
    for link_name in list(links_r.table):
        links[link_name] = read_link(links_r.sub(link_name), link_name, links.get(link_name))
    links_r.done()

    devices = _devices(top, count, prefix, default_link, links)
    groups = {d.group for d in devices}
    if mode == "proxy":
        lossy = sorted({d.link.name for d in devices if d.link.loss_pct})
        if lossy:
            raise top.error("mode", f'link {lossy[0]!r} sets loss_pct, which needs mode = "netem"')

    faults: list[Fault] = []
    for reader in top.items("faults"):
        faults.extend(read_faults(reader, seed, duration_s, count, groups, devices, mode))
    faults.sort(key=lambda f: (f.at_s, f.source))

    broker_r = top.sub("broker")
    persistence = bool(broker_r.get("persistence", (bool,), False))
    tls = bool(broker_r.get("tls", (bool,), True))
    broker_r.done()
    coll_r = top.sub("collector")
    collectors = coll_r.integer("count", 1, 1, 8)
    db = coll_r.text("db", "sqlite")
    if db != "sqlite" and not db.startswith("postgresql://"):
        raise coll_r.error("db", f'{db!r}: expected "sqlite" or a postgresql:// URL')
    coll_r.done()
    for fault in faults:
        index = fault.params.get("collector", 0)
        if fault.kind == "collector_kill" and index >= collectors:
            raise top.error(
                fault.source, f"collector {index} does not exist (count = {collectors})"
            )

    agent_r = top.sub("agent")
    # Written into /config.json by the flash (`daozhang flash --set`): timers sized for a run
    # of minutes, not days; the same keys and limits a technician has.
    tuned = {k: agent_r.optional_integer(k, *limits) for k, limits in TUNABLE.items()}
    agent = {k: v for k, v in tuned.items() if v is not None}
    agent_r.done()

    settle_r = top.sub("settlement")
    causes_r = settle_r.sub("causes")
    causes = {c: causes_r.integer(c, 0, 0, 100_000) for c in list(causes_r.table)}
    for cause in causes:
        if cause not in SETTLEMENT_CAUSES:
            raise causes_r.error(
                cause, f"not a settlement cause (one of {', '.join(SETTLEMENT_CAUSES)})"
            )
    causes_r.done()
    settle_r.done()
    top.done()
    return Scenario(
        path=path,
        name=name,
        seed=seed,
        mode=mode,
        duration_s=duration_s,
        drain_s=drain_s,
        day=day,
        flash_size=flash_size,
        heapsize=heapsize,
        receipts_per_board=per_board,
        no_response_pct=no_response_pct,
        full_pan_pct=full_pan_pct,
        devices=tuple(devices),
        faults=tuple(faults),
        broker_persistence=persistence,
        broker_tls=tls,
        collectors=collectors,
        db=db,
        settlement_causes=causes,
        agent=agent,
    )


def _business_day(r: TableReader) -> BusinessDay:
    date_value = r.get("date", (dt.date, str), dt.date(2026, 11, 19))
    if isinstance(date_value, str):
        try:
            date_value = dt.date.fromisoformat(date_value)
        except ValueError:
            raise r.error("date", f"{date_value!r}: expected YYYY-MM-DD") from None
    if isinstance(date_value, dt.datetime):
        raise r.error("date", "expected a date (YYYY-MM-DD), not a date and time")
    opens, closes = r.text("open", "09:00"), r.text("close", "21:00")
    for key, value in (("open", opens), ("close", closes)):
        if not _HHMM.match(value):
            raise r.error(key, f"{value!r}: expected HH:MM (Beijing time)")
    day = BusinessDay(date_value, opens, closes)
    if day.seconds() <= 0:
        raise r.error("close", f"{closes} is not after open {opens}")
    return day


def _devices(
    top: TableReader, count: int, prefix: str, default_link: str, links: dict[str, LinkProfile]
) -> list[Device]:
    groups = top.items("groups")
    plan: list[tuple[str, int, str, TableReader]] = []
    for g in groups:
        plan.append(
            (
                g.text("name", f"g{len(plan)}"),
                g.integer("count", 1, 1, 500),
                g.text("link", default_link),
                g,
            )
        )
        g.done()
    if not plan:
        plan = [("all", count, default_link, top)]
    total = sum(n for _, n, _, _ in plan)
    if total != count:
        raise top.error("groups", f"group counts add up to {total} but boards.count is {count}")
    seen: set[str] = set()
    devices: list[Device] = []
    width = max(4, len(str(count)))
    for group, n, link_name, reader in plan:
        if group in seen:
            raise reader.error("name", f"group {group!r} is defined twice")
        seen.add(group)
        if link_name not in links:
            where, key = (reader, "link") if reader is not top else (top, "boards.link")
            raise where.error(
                key, f"unknown link profile {link_name!r} (defined: {', '.join(sorted(links))})"
            )
        for _ in range(n):
            index = len(devices)
            dev = f"{prefix}{index + 1:0{width}d}"
            if len(dev) < 4 or len(dev) > 32:
                raise top.error("boards.prefix", f"device id {dev!r} must be 4-32 characters")
            devices.append(Device(index, dev, group, links[link_name]))
    return devices
