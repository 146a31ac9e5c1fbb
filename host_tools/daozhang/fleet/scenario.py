"""Scenario files: what a fleet simulation runs, read from TOML and validated up front.

The format is documented in docs/simulation.md. Every mistake is reported with the file and
the TOML path of the value (`faults[2].boards`), before any process starts. The result is a
fully resolved plan: each board has its id and link profile, each fault its boards and its
times in seconds since the start of the traffic phase (repeats expanded).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from daozhang.board.manager import parse_flash_size
from daozhang.errors import InputError, UsageError
from daozhang.flash.settings import TUNABLE
from daozhang.fleet.toml_reader import TableReader

# Faults that act on boards (through their proxy, control channel or process) and faults that
# act on the host side. The value lists the parameters each kind accepts besides the common ones.
DEVICE_FAULTS: dict[str, tuple[str, ...]] = {
    "power_cut": ("down_s",),
    "blackhole": ("for_s",),  # half-open: sockets stay open, no byte passes either way
    "reset": (),  # TCP RST on every connection of the board, at once
    "delay": ("for_s", "delay_ms", "jitter_ms"),
    "bandwidth": ("for_s", "kbps"),
    "flap": ("for_s", "up_s", "down_s"),
    "link_down": ("for_s",),  # the board's own link (control channel), not the proxy
    "signal": ("for_s", "rssi", "rat"),
    "loss": ("for_s", "loss_pct"),  # netem mode only: a TCP proxy cannot drop packets
}
HOST_FAULTS: dict[str, tuple[str, ...]] = {
    "broker_restart": ("down_s",),
    "collector_kill": ("down_s", "collector"),
}
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
RATS = ("wifi", "lte", "gsm")
_DEV_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class LinkProfile:
    """How one board's path to the broker behaves when no fault is active."""

    name: str
    delay_ms: int = 0
    jitter_ms: int = 0
    kbps: int = 0  # 0: no bandwidth cap
    loss_pct: float = 0.0  # netem mode only
    flap_up_s: float = 0.0  # both > 0: the link flaps for the whole run
    flap_down_s: float = 0.0
    resets_per_min: float = 0.0
    rssi: int = -60
    rat: str = "wifi"


BUILTIN_LINKS: dict[str, LinkProfile] = {
    "good": LinkProfile("good", delay_ms=5),
    "2g": LinkProfile("2g", delay_ms=300, jitter_ms=50, kbps=50, rssi=-95, rat="gsm"),
    "flaky": LinkProfile(
        "flaky",
        delay_ms=80,
        jitter_ms=40,
        flap_up_s=20,
        flap_down_s=4,
        resets_per_min=1,
        rssi=-88,
        rat="lte",
    ),
}


@dataclass(frozen=True)
class Device:
    index: int
    dev: str  # the terminal serial, also the MQTT topic segment
    group: str
    link: LinkProfile


@dataclass(frozen=True)
class Fault:
    """One fault event; `until_s` equals `at_s` for instantaneous kinds (reset)."""

    source: str  # "faults[3]" or "faults[3] #2" for the second repeat: for messages
    kind: str
    at_s: float
    until_s: float
    boards: tuple[int, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def on_host(self) -> bool:
        return self.kind in HOST_FAULTS


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
        links[link_name] = _link(links_r.sub(link_name), link_name, links.get(link_name))
    links_r.done()

    devices = _devices(top, count, prefix, default_link, links)
    groups = {d.group for d in devices}
    if mode == "proxy":
        lossy = sorted({d.link.name for d in devices if d.link.loss_pct})
        if lossy:
            raise top.error("mode", f'link {lossy[0]!r} sets loss_pct, which needs mode = "netem"')

    faults: list[Fault] = []
    for reader in top.items("faults"):
        faults.extend(_faults(reader, seed, duration_s, count, groups, devices, mode))
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


def _link(r: TableReader, name: str, base: LinkProfile | None) -> LinkProfile:
    b = base or LinkProfile(name)
    link = replace(
        b,
        delay_ms=r.integer("delay_ms", b.delay_ms, 0, 60_000),
        jitter_ms=r.integer("jitter_ms", b.jitter_ms, 0, 60_000),
        kbps=r.integer("kbps", b.kbps, 0, 10_000_000),
        loss_pct=r.number("loss_pct", b.loss_pct, 0, 100),
        flap_up_s=r.number("flap_up_s", b.flap_up_s, 0, 86400),
        flap_down_s=r.number("flap_down_s", b.flap_down_s, 0, 86400),
        resets_per_min=r.number("resets_per_min", b.resets_per_min, 0, 600),
        rssi=r.integer("rssi", b.rssi, -140, 0),
        rat=r.text("rat", b.rat, RATS),
    )
    if (link.flap_up_s > 0) != (link.flap_down_s > 0):
        raise r.error("flap_down_s", "flapping needs both flap_up_s and flap_down_s > 0")
    r.done()
    return link


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


def _faults(
    r: TableReader,
    seed: int,
    duration_s: float,
    count: int,
    groups: set[str],
    devices: list[Device],
    mode: str,
) -> list[Fault]:
    if "kind" not in r.table:
        raise r.error("kind", f"missing (one of {', '.join([*DEVICE_FAULTS, *HOST_FAULTS])})")
    kind = r.text("kind", "", (*DEVICE_FAULTS, *HOST_FAULTS))
    allowed = DEVICE_FAULTS[kind] if kind in DEVICE_FAULTS else HOST_FAULTS[kind]
    at_s = r.number("at_s", 0, 0, duration_s)
    every_s = r.number("every_s", 0, 0, duration_s)
    params: dict[str, Any] = {}
    length = 0.0
    # The fault's length: how long it lasts (for_s), or how long the process stays down.
    length_key = "for_s" if "for_s" in allowed else "down_s" if "down_s" in allowed else ""
    for key in allowed:
        if key == length_key:
            length = r.number(key, 10 if key == "for_s" else 2, 0.1, duration_s)
            params[key] = length
        elif key == "delay_ms":
            params[key] = r.integer(key, 500, 0, 60_000)
        elif key == "jitter_ms":
            params[key] = r.integer(key, 0, 0, 60_000)
        elif key == "kbps":
            params[key] = r.integer(key, 20, 1, 10_000_000)
        elif key in ("up_s", "down_s"):
            params[key] = r.number(key, 3, 0.1, 3600)
        elif key == "rssi":
            params[key] = r.integer(key, -105, -140, 0)
        elif key == "rat":
            params[key] = r.text(key, "gsm", RATS)
        elif key == "loss_pct":
            params[key] = r.number(key, 5, 0, 100)
        elif key == "collector":
            params[key] = r.integer(key, 0, 0, 7)
    if kind == "loss" and mode != "netem":
        raise r.error("kind", '"loss" needs mode = "netem" (a TCP proxy cannot drop packets)')
    boards: tuple[int, ...] = ()
    if kind in DEVICE_FAULTS:
        boards = _select(r, r.get("boards", (str, list), None), seed, count, groups, devices)
    elif "boards" in r.table:
        raise r.error("boards", f"a {kind} fault acts on the host, not on boards")
    r.done()
    until = at_s + (0 if kind == "reset" else length)
    if until > duration_s:
        raise r.error("at_s", f"the fault runs until {until:g} s, past duration_s = {duration_s:g}")
    if every_s and every_s <= until - at_s:
        raise r.error(
            "every_s", f"{every_s:g} s: must be longer than the fault ({until - at_s:g} s)"
        )
    out = [Fault(r.where, kind, at_s, until, boards, params)]
    start = at_s + every_s
    while every_s and start + (until - at_s) <= duration_s:
        again = boards
        if isinstance(r.table.get("boards"), str) and r.table["boards"].startswith("random:"):
            # A fresh draw per repeat, still reproducible from the seed.
            again = _select(r, r.table["boards"], seed + len(out), count, groups, devices)
        out.append(
            Fault(f"{r.where} #{len(out) + 1}", kind, start, start + until - at_s, again, params)
        )
        start += every_s
    return out


def _select(
    r: TableReader, spec: Any, seed: int, count: int, groups: set[str], devices: list[Device]
) -> tuple[int, ...]:
    """`"all"`, `"group:NAME"`, `"random:N"` (seeded) or an array of board indexes (0-based)."""
    if spec is None:
        raise r.error("boards", 'which boards? "all", "group:NAME", "random:N" or [0, 3]')
    if isinstance(spec, list):
        if not spec or not all(isinstance(i, int) and not isinstance(i, bool) for i in spec):
            raise r.error("boards", "expected a non-empty array of board indexes")
        bad = [i for i in spec if not 0 <= i < count]
        if bad:
            raise r.error("boards", f"board index {bad[0]} is out of range 0..{count - 1}")
        return tuple(sorted(set(spec)))
    if spec == "all":
        return tuple(range(count))
    if spec.startswith("group:"):
        group = spec.removeprefix("group:")
        if group not in groups:
            raise r.error(
                "boards", f"unknown group {group!r} (defined: {', '.join(sorted(groups))})"
            )
        return tuple(d.index for d in devices if d.group == group)
    if spec.startswith("random:"):
        text = spec.removeprefix("random:")
        if not text.isdigit() or not 1 <= int(text) <= count:
            raise r.error("boards", f"{spec!r}: N must be 1..{count} (the fleet size)")
        rng = random.Random(f"{seed}:{r.where}")
        return tuple(sorted(rng.sample(range(count), int(text))))
    raise r.error("boards", f'{spec!r}: expected "all", "group:NAME", "random:N" or [0, 3]')
