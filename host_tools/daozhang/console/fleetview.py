"""The fleet page's rows: `fleet.status.fleet_status` as people read it, filtered and counted.

Two steps, because they cost very different amounts at fleet scale: `fleet_rows` reads and
words every device (seconds for 10,000 devices: the last day of their heartbeats is summed),
and the console keeps its result as a snapshot (`snapshot.py`); `fleet_view` filters, counts
and cuts that snapshot for one page (milliseconds), and only `PAGE_ROWS` rows are drawn.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from daozhang.console.words import beijing, duration, problem_code, problem_name
from daozhang.fleet.status import DeviceStatus, fleet_status
from daozhang.radio import describe
from daozhang.store import Store

PAGE_ROWS = 300  # rows drawn at once, worst first; the counts cover the whole fleet


@dataclass(frozen=True)
class Row:
    dev: str
    merchant: str
    terminal: str
    acquirer: str
    firmware: str
    online: bool
    last_heard: str  # host time: how long since the collector heard from it
    reported_at: str  # event time: the terminal's clock at its latest heartbeat
    unsent: str
    oldest: str
    signal: str
    reconnects: int
    level: int
    problem: str  # the kind's words
    problem_code: str
    detail: str  # fleet status's own sentence, for the tooltip


@dataclass(frozen=True)
class Fleet:
    """Every device's row, worst first, as of `at` (unix s)."""

    rows: list[Row]
    at: float


@dataclass(frozen=True)
class FleetView:
    rows: list[Row]  # at most PAGE_ROWS
    counts: list[tuple[str, str, int]]  # (code, words, devices) over the whole fleet
    merchants: list[str]
    acquirers: list[str]
    firmwares: list[str]
    total: int  # devices in the fleet
    matching: int  # devices the filters let through


def _row(s: DeviceStatus, acquirer: str) -> Row:
    code = problem_code(s.problem)
    return Row(
        dev=s.dev,
        merchant=s.mid or "-",
        terminal=s.tid or "-",
        acquirer=acquirer or "-",
        firmware=s.fw or "-",
        online=s.online,
        last_heard=duration(s.silent_s) if s.silent_s is not None else "从未 never",
        reported_at=beijing(s.reported_at),
        unsent="-" if s.backlog is None else str(s.backlog),
        oldest=duration(s.oldest_s),
        signal=describe(s.signal),
        reconnects=s.reconnects,
        level=s.level,
        problem=problem_name(code),
        problem_code=code,
        detail=s.problem,
    )


def fleet_rows(store: Store, now: float) -> Fleet:
    """Every device, worded; the acquirer from the merchants the settlement files named."""
    acquirers = {
        str(m): str(a or "") for m, a in store.query("SELECT mid, acquirer FROM merchants")
    }
    return Fleet([_row(s, acquirers.get(s.mid or "", "")) for s in fleet_status(store, now)], now)


def fleet_view(
    fleet: Fleet, filters: Mapping[str, str | None], limit: int = PAGE_ROWS
) -> FleetView:
    """The rows the filters (problem, merchant, acquirer, firmware: a value or None) let
    through, worst first, at most `limit`; the counts are the whole fleet's."""
    problem, merchant = filters.get("problem"), filters.get("merchant")
    acquirer, firmware = filters.get("acquirer"), filters.get("firmware")
    rows = fleet.rows
    counted = Counter(r.problem_code for r in rows)
    worst = {r.problem_code: r.level for r in reversed(rows)}
    counts = [
        (code, problem_name(code), n)
        for code, n in sorted(counted.items(), key=lambda item: (-worst[item[0]], item[0]))
    ]
    shown = [
        r
        for r in rows
        if (not problem or r.problem_code == problem)
        and (not merchant or r.merchant == merchant)
        and (not acquirer or r.acquirer == acquirer)
        and (not firmware or r.firmware == firmware)
    ]
    return FleetView(
        rows=shown[:limit],
        counts=counts,
        merchants=sorted({r.merchant for r in rows if r.merchant != "-"}),
        acquirers=sorted({r.acquirer for r in rows if r.acquirer != "-"}),
        firmwares=sorted({r.firmware for r in rows if r.firmware != "-"}),
        total=len(rows),
        matching=len(shown),
    )
