"""The timeline a scenario turns into: link states, actions, outage windows."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

from daozhang.lab.fleet import scenario
from daozhang.lab.fleet.plan import (
    BLACKHOLE,
    DOWN,
    OPEN,
    Action,
    LinkChange,
    outages,
    schedule,
)
from daozhang.lab.fleet.scenario import load

BASE = """
seed = 5
duration_s = 100
[boards]
count = 3
[[groups]]
name = "a"
count = 2
link = "good"
[[groups]]
name = "f"
count = 1
link = "custom"
[links.custom]
delay_ms = 40
flap_up_s = 20
flap_down_s = 5
"""


def plan(tmp_path: Path, faults: str) -> tuple[scenario.Scenario, list[LinkChange | Action]]:
    path = tmp_path / "s.toml"
    path.write_text(textwrap.dedent(BASE) + textwrap.dedent(faults))
    s = load(path)
    return s, schedule(s)


def changes(events: list[LinkChange | Action], board: int) -> list[tuple[float, str, bool]]:
    return [
        (e.t, e.state.path, e.state.link_up)
        for e in events
        if isinstance(e, LinkChange) and e.board == board
    ]


def test_faults_overlap_into_one_state_per_moment(tmp_path: Path) -> None:
    _, events = plan(
        tmp_path,
        """
        [[faults]]
        kind = "blackhole"
        at_s = 10
        for_s = 20
        boards = [0]
        [[faults]]
        kind = "link_down"
        at_s = 20
        for_s = 20
        boards = [0]
        [[faults]]
        kind = "delay"
        at_s = 15
        for_s = 10
        boards = [0]
        delay_ms = 900
    """,
    )
    assert changes(events, 0) == [
        (0, OPEN, True),
        (10, BLACKHOLE, True),
        (15, BLACKHOLE, True),
        (20, BLACKHOLE, False),
        (25, BLACKHOLE, False),
        (30, OPEN, False),
        (40, OPEN, True),
        (100, OPEN, True),
    ]
    delays = [e.state.delay_ms for e in events if isinstance(e, LinkChange) and e.board == 0]
    assert delays == [5, 5, 900, 900, 5, 5, 5, 5]
    assert outages(events, 0, 100) == [(10, 40)]
    assert outages(events, 1, 100) == []


def test_profile_flapping_has_a_phase_per_board_and_ends_clean(tmp_path: Path) -> None:
    s, events = plan(tmp_path, "")
    flaps = changes(events, 2)
    assert flaps[0] == (0, OPEN, True)  # starts connected
    downs = [t for t, path, _ in flaps if path == DOWN]
    assert len(downs) == 4  # a 25 s cycle in 100 s
    assert all(round(b - a, 6) == 25 for a, b in itertools.pairwise(downs))
    assert flaps[-1] == (100, OPEN, True)
    windows = outages(events, 2, 100)
    assert all(round(b - a, 6) == 5 for a, b in windows if b < 100)
    assert schedule(s) == events  # reproducible


def test_actions_come_in_pairs_and_restarts_sort_first(tmp_path: Path) -> None:
    _, events = plan(
        tmp_path,
        """
        [[faults]]
        kind = "power_cut"
        at_s = 10
        down_s = 3
        boards = [1]
        every_s = 20
        [[faults]]
        kind = "broker_restart"
        at_s = 13
        down_s = 2
        [[faults]]
        kind = "collector_kill"
        at_s = 50
        [[faults]]
        kind = "reset"
        at_s = 60
        boards = "all"
    """,
    )
    acts = [(e.t, e.kind, e.board) for e in events if isinstance(e, Action)]
    assert acts[:4] == [
        (10, "power_cut", 1),
        (13, "power_on", 1),
        (13, "broker_stop", -1),
        (15, "broker_start", -1),
    ]
    assert sum(1 for a in acts if a[1] == "power_cut") == 5  # 10, 30, 50, 70, 90
    assert [a for a in acts if a[1] == "reset"] == [
        (60, "reset", 0),
        (60, "reset", 1),
        (60, "reset", 2),
    ]
    assert [e.t for e in events] == sorted(e.t for e in events)


def test_chaos_plan_has_every_fault() -> None:
    s = load(Path(scenario.__file__).with_name("scenarios") / "chaos.toml")
    events = schedule(s)
    kinds = {e.kind for e in events if isinstance(e, Action)}
    assert {"reset", "power_cut", "power_on", "broker_stop", "collector_kill"} <= kinds
    paths = {e.state.path for e in events if isinstance(e, LinkChange)}
    assert {OPEN, BLACKHOLE, DOWN} <= paths
    assert outages(events, s.devices[-1].index, s.duration_s)  # a flaky board has outages
    # Every board ends the traffic phase on its clean profile state.
    last = {e.board: e for e in events if isinstance(e, LinkChange)}
    assert all(e.t == s.duration_s and e.state.reachable for e in last.values())
