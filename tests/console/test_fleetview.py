"""The fleet page's filters and counts over a snapshot of rows, and the snapshot's refresh."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from daozhang.console.fleetview import Fleet, Row, fleet_view
from daozhang.console.snapshot import Snapshot

BASE = Row(
    dev="D0",
    merchant="898310048160001",
    terminal="10000001",
    acquirer="ACQ1",
    firmware="1.4.2",
    online=True,
    last_heard="1分钟 1 min",
    reported_at="-",
    unsent="0",
    oldest="-",
    signal="-",
    reconnects=0,
    level=0,
    problem="正常 ok",
    problem_code="ok",
    detail="ok",
)


def fleet() -> Fleet:
    rows = [
        replace(BASE, dev="D1", level=3, problem_code="silent_unsent", acquirer="ACQ2"),
        replace(BASE, dev="D2", level=2, problem_code="silent", firmware="1.5.0"),
        replace(BASE, dev="D3", firmware="1.5.0", acquirer="ACQ2"),
        replace(BASE, dev="D4", merchant="898310048160002"),
    ]
    return Fleet(rows, 0.0)


def devs(**filters: str) -> list[str]:
    return [r.dev for r in fleet_view(fleet(), filters).rows]


def test_filters_by_acquirer_firmware_merchant_and_problem_together() -> None:
    assert devs() == ["D1", "D2", "D3", "D4"]
    assert devs(acquirer="ACQ2") == ["D1", "D3"]
    assert devs(firmware="1.5.0") == ["D2", "D3"]
    assert devs(firmware="1.5.0", acquirer="ACQ2") == ["D3"]
    assert devs(merchant="898310048160002") == ["D4"]
    assert devs(problem="ok", acquirer="ACQ1") == ["D4"]


def test_counts_cover_the_whole_fleet_worst_first_and_the_page_is_cut() -> None:
    view = fleet_view(fleet(), {"firmware": "1.5.0"}, limit=1)
    assert view.counts == [
        ("silent_unsent", "失联且有未上传记录 silent with unsent records", 1),
        ("silent", "失联 silent", 1),
        ("ok", "正常 ok", 2),
    ]
    assert (view.total, view.matching, [r.dev for r in view.rows]) == (4, 2, ["D2"])
    assert (view.acquirers, view.firmwares) == (["ACQ1", "ACQ2"], ["1.4.2", "1.5.0"])


def test_snapshot_serves_the_old_value_while_one_refresh_runs() -> None:
    clock = [0.0]
    calls: list[float] = []

    def compute() -> int:
        calls.append(clock[0])
        clock[0] += 1.0  # each computation takes one second
        return len(calls)

    async def scenario() -> list[int]:
        snap = Snapshot(compute, min_age_s=3.0, spacing=4.0, clock=lambda: clock[0])
        seen = [await snap.get()]  # the first request waits: 1
        clock[0] = 3.5  # older than min_age but not than 4 x 1 s: still fresh enough
        seen.append(await snap.get())
        clock[0] = 4.5  # stale: answered with the old value, one refresh started
        seen.append(await snap.get())
        seen.append(await snap.get())  # no second refresh while one runs
        await asyncio.sleep(0.2)
        seen.append(await snap.get())
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 1, 2]
    assert len(calls) == 2
