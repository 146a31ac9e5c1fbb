"""The cells page: outages across the fleet grouped by the cell the terminal was on and by
time, so that "this terminal's spot" and "the carrier's cell was down for 40 terminals" are
told apart.

Each device's outages come from its `link_down` / `link_up` diag events in event time (as
correlation reads them); the cell of an outage is the `cell` of the device's last `signal`
reading at or before the outage began (DESIGN §1.2; a Cat.1 board reports its cell id, a
Wi-Fi board none), else of its latest heartbeat's signal map. On one cell, outages that
overlap in time form one group. A group is:
- `cell_down` when at least `CELL_DOWN_TERMINALS` terminals were down together;
- `spot` when one terminal was down while others on the same cell were heard in the window
  (the cell worked: the terminal's place, antenna or module);
- `few` otherwise (two terminals, or a cell where only this terminal is known).
Outages with no cell id (Wi-Fi, or no reading yet) are never grouped: without a cell id
nothing says the terminals shared anything.

Reads are plain SELECTs outside any write transaction (`Store.query`): the collector keeps
committing while the page loads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from daozhang.console.words import beijing, duration
from daozhang.store import Store
from daozhang.words import STAGE, name

CELL_DOWN_TERMINALS = 3
# Outages starting this close after a group's end still belong to it (the terminals notice a
# cell's loss at different times: keepalive, their next upload).
JOIN_S = 120
# Signal readings this long before the window still say which cell a device was on.
CELL_LOOKBACK_S = 86_400
NO_CELL = ""

VERDICT: dict[str, tuple[str, str]] = {
    "cell_down": ("基站故障", "the carrier's cell was down"),
    "few": ("少数终端", "a few terminals"),
    "spot": ("本终端位置问题", "this terminal's spot"),
    "no_cell": ("无基站信息", "no cell id (Wi-Fi or not reported)"),
}


@dataclass
class _Outage:
    dev: str
    start: int
    end: int | None
    stage: str
    cell: str = NO_CELL


@dataclass
class Group:
    cell: str
    start: int
    end: int | None  # None: some terminal is still down
    devices: list[str] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)
    on_cell: int = 0  # terminals heard on this cell in the window
    verdict: str = "few"

    @property
    def down(self) -> int:
        return len(self.devices)


@dataclass(frozen=True)
class GroupRow:
    cell: str
    start: str
    end: str
    length: str
    down: int
    on_cell: int
    devices: list[str]
    stages: str
    verdict: str
    verdict_code: str


@dataclass(frozen=True)
class CellsView:
    range: str
    since: str
    rows: list[GroupRow]
    cells_down: int  # groups judged cell_down
    terminals_down: int  # distinct terminals with an outage in the window


def _cell(sig: dict[str, Any]) -> str:
    cell = sig.get("cell")
    return str(cell) if isinstance(cell, (str, int)) and not isinstance(cell, bool) else NO_CELL


def _read(store: Store, lo: int, hi: int) -> tuple[list[_Outage], dict[str, set[str]]]:
    """Outages touching [lo, hi] with their cell; the devices heard on each cell in it."""
    outages: list[_Outage] = []
    open_down: dict[str, _Outage] = {}
    readings: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for dev_value, t_value, ev, body_json in store.query(
        "SELECT dev, COALESCE(placed_t, t), ev, body_json FROM diag_events"
        " WHERE ev IN ('link_down', 'link_up', 'signal')"
        " AND COALESCE(placed_t, t) BETWEEN ? AND ? ORDER BY dev, epoch, seq",
        (lo - CELL_LOOKBACK_S, hi),
    ):
        dev, t = str(dev_value), int(t_value)
        if ev == "signal":
            cell = _cell(json.loads(body_json))
            if cell:
                readings[dev].append((t, cell))
        elif ev == "link_down":
            earlier = open_down.get(dev)
            if earlier is not None and earlier.end is None:
                earlier.end = t  # down again before an up: the first one ended by now
            o = _Outage(dev, t, None, str(json.loads(body_json).get("stage", "?")))
            outages.append(o)
            open_down[dev] = o
        else:
            o2 = open_down.pop(dev, None)
            if o2 is not None:
                o2.end = t
    shown = [o for o in outages if o.start <= hi and (o.end is None or o.end >= lo)]
    heard: dict[str, set[str]] = defaultdict(set)
    for dev, found in readings.items():
        for t, cell in found:
            if t >= lo:
                heard[cell].add(dev)
    unknown = sorted({o.dev for o in shown if not readings.get(o.dev)})
    latest = _latest_cells(store, unknown)
    for o in shown:
        before = [cell for t, cell in readings.get(o.dev, ()) if t <= o.start]
        o.cell = before[-1] if before else latest.get(o.dev, NO_CELL)
        if not before and o.cell:
            heard[o.cell].add(o.dev)
    return shown, heard


def _latest_cells(store: Store, devices: list[str]) -> dict[str, str]:
    """The cell in each device's latest heartbeat (by its clock): for devices without a
    signal reading in the window."""
    out = {}
    for dev in devices:
        rows = store.query(
            "SELECT body_json FROM heartbeats WHERE dev = ? ORDER BY t DESC, id DESC LIMIT 1",
            (dev,),
        )
        if rows:
            sig = json.loads(rows[0][0]).get("sig")
            if isinstance(sig, dict) and _cell(sig):
                out[dev] = _cell(sig)
    return out


def group(outages: list[_Outage], heard: dict[str, set[str]], hi: int) -> list[Group]:
    """Overlapping outages on one cell as one group, judged (module docstring)."""
    groups: list[Group] = []
    by_cell: dict[str, list[_Outage]] = defaultdict(list)
    for o in outages:
        by_cell[o.cell].append(o)
    for cell, found in by_cell.items():
        found.sort(key=lambda o: o.start)
        current: Group | None = None
        current_end = 0
        for o in found:
            end = o.end if o.end is not None else hi
            if cell == NO_CELL or current is None or o.start > current_end + JOIN_S:
                current = Group(cell, o.start, o.end)
                current_end = end
                groups.append(current)
            else:
                current_end = max(current_end, end)
                current.end = None if o.end is None or current.end is None else current_end
            if o.dev not in current.devices:
                current.devices.append(o.dev)
            current.stages[o.stage] = current.stages.get(o.stage, 0) + 1
    for g in groups:
        g.on_cell = len(heard.get(g.cell, set()) | set(g.devices)) if g.cell else g.down
        if not g.cell:
            g.verdict = "no_cell"
        elif g.down >= CELL_DOWN_TERMINALS:
            g.verdict = "cell_down"
        elif g.down == 1 and g.on_cell > 1:
            g.verdict = "spot"
        else:
            g.verdict = "few"
    order = {"cell_down": 0, "few": 1, "spot": 2, "no_cell": 3}
    groups.sort(key=lambda g: (order[g.verdict], -g.down, -g.start))
    return groups


def cells_view(store: Store, now: float, range_name: str, span_s: int) -> CellsView:
    hi = int(now)
    lo = hi - span_s
    outages, heard = _read(store, lo, hi)
    groups = group(outages, heard, hi)
    rows = [
        GroupRow(
            cell=g.cell or "-",
            start=beijing(g.start, seconds=True),
            end=beijing(g.end, seconds=True) if g.end is not None else "仍中断 still down",
            length=duration((g.end if g.end is not None else hi) - g.start),
            down=g.down,
            on_cell=g.on_cell,
            devices=g.devices,
            stages=", ".join(f"{name(STAGE, s)} ×{n}" for s, n in g.stages.items()),
            verdict=name(VERDICT, g.verdict),
            verdict_code=g.verdict,
        )
        for g in groups
    ]
    return CellsView(
        range=range_name,
        since=beijing(lo),
        rows=rows,
        cells_down=sum(g.verdict == "cell_down" for g in groups),
        terminals_down=len({o.dev for o in outages}),
    )
