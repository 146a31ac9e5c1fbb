"""The run's timeline: a scenario turned into the exact events a run plays, in order.

A pure function of the scenario (and its seed), so the same file gives the same run and the
timeline can be tested without starting anything. Three kinds of events:
- `LinkChange`: a board's path to the broker becomes a new `LinkState` (what its proxy and its
  control channel must show from then on), computed from its link profile (flapping included)
  and every fault active on it at that moment;
- `Action`: something happens once — `reset` (RST the board's connections), `power_cut` /
  `power_on`, `broker_stop` / `broker_start`, `collector_kill` / `collector_start`;
- all at `t` seconds since the traffic phase began (real time).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from daozhang.lab.fleet.scenario import Device, Scenario
from daozhang.lab.fleet.scenario_faults import Fault

OPEN, BLACKHOLE, DOWN = "open", "blackhole", "down"


@dataclass(frozen=True)
class LinkState:
    """What one board's network looks like for a while."""

    path: str = OPEN  # open | blackhole (half-open: nothing passes) | down (RST + refuse)
    link_up: bool = True  # what the board's own link reports (control channel)
    delay_ms: int = 0
    jitter_ms: int = 0
    kbps: int = 0
    loss_pct: float = 0.0
    rssi: int = -60
    rat: str = "wifi"

    @property
    def reachable(self) -> bool:
        """Can the terminal reach anything upstream (broker, acquirer host) right now?"""
        return self.path == OPEN and self.link_up


@dataclass(frozen=True)
class LinkChange:
    t: float
    board: int
    state: LinkState


@dataclass(frozen=True)
class Action:
    t: float
    kind: str  # reset | power_cut | power_on | broker_stop | broker_start | collector_kill ...
    board: int = -1  # for board actions
    target: int = 0  # collector index for collector actions
    source: str = ""  # the scenario entry it comes from, for the run's timeline log


Event = LinkChange | Action


def base_state(device: Device) -> LinkState:
    link = device.link
    return LinkState(
        delay_ms=link.delay_ms,
        jitter_ms=link.jitter_ms,
        kbps=link.kbps,
        loss_pct=link.loss_pct,
        rssi=link.rssi,
        rat=link.rat,
    )


def _flap_down(up_s: float, down_s: float, phase: float, t: float) -> bool:
    return (t + phase) % (up_s + down_s) >= up_s


def state_at(device: Device, faults: list[Fault], t: float, phase: float) -> LinkState:
    """The board's link state at time `t`: its profile, then every active fault on top."""
    state = base_state(device)
    link = device.link
    if link.flap_up_s and _flap_down(link.flap_up_s, link.flap_down_s, phase, t):
        state = replace(state, path=DOWN)
    for f in faults:
        if not (f.at_s <= t < f.until_s) or device.index not in f.boards:
            continue
        p = f.params
        if f.kind == "blackhole" and state.path == OPEN:
            state = replace(state, path=BLACKHOLE)
        elif f.kind == "flap" and _flap_down(p["up_s"], p["down_s"], 0.0, t - f.at_s):
            state = replace(state, path=DOWN)
        elif f.kind == "link_down":
            state = replace(state, link_up=False)
        elif f.kind == "delay":
            state = replace(
                state,
                delay_ms=max(state.delay_ms, p["delay_ms"]),
                jitter_ms=max(state.jitter_ms, p["jitter_ms"]),
            )
        elif f.kind == "bandwidth":
            state = replace(state, kbps=min(x for x in (state.kbps, p["kbps"]) if x))
        elif f.kind == "signal":
            state = replace(state, rssi=p["rssi"], rat=p["rat"])
        elif f.kind == "loss":
            state = replace(state, loss_pct=max(state.loss_pct, p["loss_pct"]))
    return state


def _boundaries(device: Device, faults: list[Fault], end: float, phase: float) -> list[float]:
    """Every time at which the board's state may change."""
    times = {0.0}
    for f in faults:
        if device.index in f.boards:
            times.update((f.at_s, f.until_s))
            if f.kind == "flap":
                t, up, down = f.at_s, f.params["up_s"], f.params["down_s"]
                while t < f.until_s:
                    times.update((t + up, t + up + down))
                    t += up + down
    link = device.link
    if link.flap_up_s:
        period = link.flap_up_s + link.flap_down_s
        start = -(phase % period)
        while start < end:
            times.update((start + link.flap_up_s, start + period))
            start += period
    return sorted(t for t in times if 0 <= t < end)


def schedule(scenario: Scenario) -> list[Event]:
    """Every event of the traffic phase, ordered by time; the run ends with all links clean."""
    rng = random.Random(f"plan:{scenario.seed}")
    end = scenario.duration_s
    faults = list(scenario.faults)
    events: list[Event] = []
    for device in scenario.devices:
        link = device.link
        # Flapping boards do not all flap together (a random phase each), as in a real fleet;
        # the phase falls in the "up" part so that every board starts connected.
        phase = rng.uniform(0, link.flap_up_s) if link.flap_up_s else 0.0
        previous: LinkState | None = None
        for t in _boundaries(device, faults, end, phase):
            state = state_at(device, faults, t, phase)
            if state != previous:
                events.append(LinkChange(t, device.index, state))
                previous = state
        # Profile resets: a Poisson process per board.
        if link.resets_per_min:
            t = rng.expovariate(link.resets_per_min / 60)
            while t < end:
                events.append(Action(t, "reset", board=device.index, source=f"links.{link.name}"))
                t += rng.expovariate(link.resets_per_min / 60)
        # The drain phase starts from the profile's clean state, with no flapping.
        events.append(LinkChange(end, device.index, base_state(device)))
    for f in faults:
        down = f.until_s
        if f.kind == "reset":
            events.extend(Action(f.at_s, "reset", board=b, source=f.source) for b in f.boards)
        elif f.kind == "power_cut":
            for b in f.boards:
                events.append(Action(f.at_s, "power_cut", board=b, source=f.source))
                events.append(Action(down, "power_on", board=b, source=f.source))
        elif f.kind == "broker_restart":
            events.append(Action(f.at_s, "broker_stop", source=f.source))
            events.append(Action(down, "broker_start", source=f.source))
        elif f.kind == "collector_kill":
            target = int(f.params.get("collector", 0))
            events.append(Action(f.at_s, "collector_kill", target=target, source=f.source))
            events.append(Action(down, "collector_start", target=target, source=f.source))
    order = {"power_on": 0, "broker_start": 0, "collector_start": 0}
    events.sort(key=lambda e: (e.t, isinstance(e, Action) and order.get(e.kind, 1)))
    return events


def outages(events: list[Event], board: int, end: float) -> list[tuple[float, float]]:
    """The windows in which `board` could reach nothing upstream (for the POS and the truth)."""
    windows: list[tuple[float, float]] = []
    start: float | None = None
    for e in events:
        if not isinstance(e, LinkChange) or e.board != board:
            continue
        if not e.state.reachable and start is None:
            start = e.t
        elif e.state.reachable and start is not None:
            windows.append((start, e.t))
            start = None
    if start is not None:
        windows.append((start, end))
    return windows
