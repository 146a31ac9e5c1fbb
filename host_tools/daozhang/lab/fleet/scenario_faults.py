"""A scenario's `[[faults]]` tables: kinds and their parameters, the boards each one hits,
and repeats expanded into one `Fault` per occurrence (docs/simulation.md)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daozhang.lab.fleet.links import RATS
from daozhang.lab.fleet.toml_reader import TableReader

if TYPE_CHECKING:
    from daozhang.lab.fleet.scenario import Device

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


def read_faults(
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
