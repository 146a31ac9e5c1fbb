"""The run's one timeline: the boards' clocks, the POS times and the fault timeline agree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from daozhang.lab.fleet import scenario as scenario_mod
from daozhang.lab.fleet.plan import schedule
from daozhang.lab.fleet.player import describe
from daozhang.lab.fleet.timebase import LEAD_S, Timebase
from daozhang.lab.sim.fleet import Day
from daozhang.units import BEIJING

CHAOS = Path(scenario_mod.__file__).with_name("scenarios") / "chaos.toml"


def board_time(clock: dict[str, float], host: float) -> float:
    """What boards/virtual/board.py reads from such a control clock at host time `host`."""
    return clock["t"] + (host - clock["at"]) * clock["rate"]


def test_business_time_is_the_generators_and_the_boards() -> None:
    s = scenario_mod.load(CHAOS)
    tb = Timebase.of(s)
    opens = dt.datetime.combine(s.day.date, dt.time(9), BEIJING).timestamp()
    assert (tb.open_s, tb.rate) == (opens, s.time_scale)
    hh, mm = (int(x) for x in s.day.close_hhmm.split(":"))
    day = Day(s.day.date, 9 * 3600, hh * 3600 + mm * 60, s.duration_s)
    for at_s in (0.0, 0.5, 17.25, s.duration_s / 2, s.duration_s):
        # The POS stamps a sale sent at at_s with day.lt(at_s): the board's clock shows the same.
        assert int(tb.business(at_s)) == day.lt(at_s)
        assert int(board_time(tb.traffic_clock(1000.0), 1000.0 + at_s)) == day.lt(at_s)


def test_clocks_by_phase_never_step_back() -> None:
    tb = Timebase(open_s=1795050000.0, rate=312.0)
    setup = tb.setup_clock(host_now=500.0)
    assert board_time(setup, 500.0) == tb.open_s - LEAD_S and setup["rate"] == 1.0
    # Traffic starts 90 real seconds later: the clock moves forward to the open.
    traffic = tb.traffic_clock(host_t0=590.0)
    assert board_time(setup, 590.0) < board_time(traffic, 590.0) == tb.open_s
    # The drain goes on from where the traffic left it, at real rate.
    drain = tb.drain_clock(host_t0=590.0, host_now=740.0)
    assert board_time(drain, 740.0) == board_time(traffic, 740.0) == tb.business(150.0)
    assert board_time(drain, 750.0) == tb.business(150.0) + 10
    assert tb.earliest().timestamp() < tb.open_s - LEAD_S


def test_plan_rows_carry_the_business_time() -> None:
    s = scenario_mod.load(CHAOS)
    tb = Timebase.of(s)
    events = schedule(s)
    assert [describe(e, tb)["at"] for e in events] == [tb.label(e.t) for e in events]
    assert describe(events[0], tb)["at"] == "09:00:00"
    assert "at" not in describe(schedule(s)[0])
