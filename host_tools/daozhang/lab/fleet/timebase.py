"""The run's one timeline: real seconds of the traffic phase and business time.

The POS simulators stamp sales with business time (`lt`), the generator dates settlement by
it, the fault timeline is planned in real seconds of the traffic phase, and the boards' own
clocks (their RTC and NTP, set through the control channel as a real board's RTC is set) run
on it: all with one mapping, `business(at_s) = open + at_s * rate`. So an outage played at
`at_s` is journaled by the board at `business(at_s)`, where the sales that failed in it are.

The boards' clocks by phase (docs/simulation.md, "Time"):
- setup (flashing, first boot): real rate, from `LEAD_S` before the open, so the boot and the
  first connection sit on the business day, before its first sale;
- traffic: `open` at the instant the traffic starts, `rate` business seconds per real second;
- drain: real rate again from where the traffic left it (after the close): the day's
  backlog is uploaded "after hours" instead of running the clock on into the next days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from daozhang.lab.fleet.scenario import Scenario
from daozhang.units import BEIJING

# Business time the boards' clocks show when they are set up: before the open by this much,
# so a setup of up to this long (real seconds) never puts a board's clock past the open.
LEAD_S = 3600


@dataclass(frozen=True)
class Timebase:
    open_s: float  # the business day's open, unix s
    rate: float  # business seconds per real second during traffic (the scenario's time_scale)

    @classmethod
    def of(cls, scenario: Scenario) -> Timebase:
        day = scenario.day
        hours, minutes = (int(x) for x in day.open_hhmm.split(":"))
        opens = dt.datetime.combine(day.date, dt.time(hours, minutes), BEIJING)
        return cls(opens.timestamp(), scenario.time_scale)

    def business(self, at_s: float) -> float:
        """Business time (unix s) of a moment `at_s` real seconds into the traffic."""
        return self.open_s + at_s * self.rate

    def label(self, at_s: float) -> str:
        """The business time of `at_s` as Beijing `HH:MM:SS` (for plans and logs)."""
        return dt.datetime.fromtimestamp(self.business(at_s), BEIJING).strftime("%H:%M:%S")

    def earliest(self) -> dt.datetime:
        """When certificates must be valid from at the latest: the boards' first clock
        reading (a day early, for any clock a little behind)."""
        return dt.datetime.fromtimestamp(self.open_s - LEAD_S - 86400, dt.UTC)

    # The boards' control-channel clock for each phase (VirtualBoard.set_clock's arguments).
    def setup_clock(self, host_now: float) -> dict[str, Any]:
        return {"t": self.open_s - LEAD_S, "at": host_now, "rate": 1.0}

    def traffic_clock(self, host_t0: float) -> dict[str, Any]:
        return {"t": self.open_s, "at": host_t0, "rate": self.rate}

    def drain_clock(self, host_t0: float, host_now: float) -> dict[str, Any]:
        return {"t": self.business(host_now - host_t0), "at": host_now, "rate": 1.0}
