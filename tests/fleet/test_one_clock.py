"""A fleet on one clock (issue 23, item 3): the boards' clocks, the POS simulators and the fault
timeline share the business day, so an outage injected at a business time is journaled by
the board at that time, and the sales that failed in it carry times inside it.

Two real boards (TLS on, the business day in the past), a link-down window on one of them.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import cbor2
import pytest
from daozhang.lab.fleet import scenario as scenario_mod
from daozhang.lab.fleet.runner import run_scenario
from daozhang.lab.fleet.timebase import LEAD_S, Timebase
from daozhang.units import BEIJING

SCENARIO = """
name = "one-clock"
seed = 5
duration_s = 40
drain_s = 90

[day]
date = "2026-11-19"
open = "09:00"
close = "21:00"

[boards]
count = 2
flash_size = "1M"
heapsize = "256K"
receipts_per_board = 60
no_response_pct = 0

[agent]
keepalive_s = 15
ack_timeout_s = 10
backoff_base_ms = 300
backoff_cap_ms = 2000
stable_s = 10
hb_s = 10

[[faults]]
kind = "link_down"
at_s = 15
for_s = 8
boards = [0]
"""
DOWN_AT, DOWN_FOR = 15, 8


def when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, BEIJING).isoformat()


@pytest.mark.slow
def test_an_outage_is_journaled_at_its_business_time_with_the_sales_it_broke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAOZHANG_STATE", str(tmp_path / "state"))
    path = tmp_path / "one-clock.toml"
    path.write_text(SCENARIO)
    scenario = scenario_mod.load(path)
    tb = Timebase.of(scenario)
    lines: list[str] = []
    result = run_scenario(scenario, tmp_path / "run", progress=lines.append)
    log = "\n".join(lines)
    assert result.invariants is not None and result.invariants.valid, log
    assert result.timeline_errors == [], result.timeline_errors

    db = sqlite3.connect(f"file:{tmp_path / 'run' / 'daozhang.db'}?mode=ro", uri=True)
    try:
        diags = [
            (dev, t, json.loads(body))
            for dev, t, body in db.execute("SELECT dev, t, body_json FROM diag_events")
        ]
        receipts = [
            (dev, t, cbor2.loads(raw)["b"])
            for dev, t, raw in db.execute("SELECT dev, t, raw FROM records WHERE kind = 'r'")
        ]
        beats = [t for (t,) in db.execute("SELECT t FROM heartbeats")]
    finally:
        db.close()
    rate = scenario.time_scale
    down_from, down_to = tb.business(DOWN_AT), tb.business(DOWN_AT + DOWN_FOR)
    dev0 = scenario.devices[0].dev

    # The board journals the outage where the timeline put it: the link watch notices within
    # a second (real), i.e. within `rate` business seconds; allow three for a loaded machine.
    downs = [(t, b) for dev, t, b in diags if dev == dev0 and b["ev"] == "link_down"]
    in_window = [
        t for t, b in downs if b["stage"] == "link" and down_from <= t <= down_from + 3 * rate
    ]
    assert in_window, (when(down_from), [(when(t), b) for t, b in downs])
    ups = [t for dev, t, b in diags if dev == dev0 and b["ev"] == "link_up" and t > in_window[0]]
    assert ups and ups[0] >= down_to - rate, (down_to, ups)

    # The sales that failed in it: their terminal time and the board's journal time both
    # inside the outage the board journaled.
    failed = [(t, b) for dev, t, b in receipts if dev == dev0 and b["st"] == "no_response"]
    assert len(failed) >= 3, failed
    for t, body in failed:
        assert down_from <= body["lt"] < down_to, (body["lt"], down_from, down_to)
        assert in_window[0] - rate <= t <= ups[0], (t, in_window[0], ups[0])

    # Every device fact of the run sits on the business day (from the boards' setup before
    # the open to the drain after the close), and no clock ever stepped.
    close = tb.business(scenario.duration_s)
    for t in [t for _, t, _ in diags] + [t for _, t, _ in receipts] + beats:
        assert tb.open_s - LEAD_S <= t <= close + 600, t
    steps = [b for _, _, b in diags if b["ev"] == "clock"]
    assert all(abs(b["step_s"]) < 60 for b in steps), steps
