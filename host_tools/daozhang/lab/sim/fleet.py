"""The generator's world for a fleet run: one business day on N real boards.

`fleet_world()` plans what each board's POS will do (merchants, transactions and the receipt
frames with the real second each is sent), knowing the run's timeline: a sale whose moment
falls in its board's outage gets no response and is reversed when the link is back (`rv` 98),
exactly what the terminal does, so its truth is `network_reversed`. The acquirer's side is
the generator's own (`sim.scenario._settle`): detail rows, payouts, injected upstream causes
and the truth of every finding; `daozhang.lab.sim.load.write_files` writes its files. Nothing
here depends on what reached the store: the fleet run checks that separately (the no-loss
invariant), and correlation must then match this truth.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from daozhang.lab.sim.device import _receipt
from daozhang.lab.sim.load import write_files
from daozhang.lab.sim.model import ACQUIRERS, Merchant, Scenario, Txn
from daozhang.lab.sim.scenario import _settle
from daozhang.lab.sim.world import Builder
from daozhang.security.pan import luhn_ok
from daozhang.settle.importer import ImportResult, import_file
from daozhang.settle.policy import due
from daozhang.store import Store
from daozhang.units import BEIJING

ACQUIRER_DAY_ROWS = 40
AMOUNTS = (1000, 2500, 3800, 9900, 15000, 28800, 66600, 128000, 300000)


@dataclass(frozen=True)
class Frame:
    """One receipt state the POS sends its board, at `at_s` real seconds into the traffic."""

    at_s: float
    body: dict[str, Any]


@dataclass
class FleetWorld:
    scenario: Scenario
    frames: dict[str, list[Frame]] = field(default_factory=dict)

    def truth_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tr in self.scenario.truth.values():
            label = tr.cause or tr.status
            counts[label] = counts.get(label, 0) + 1
        return counts


@dataclass(frozen=True)
class Day:
    date: date
    open_s: int  # seconds after Beijing midnight
    close_s: int
    duration_s: float  # real seconds the day takes

    def lt(self, at_s: float) -> int:
        """Business time (unix s) of a real moment of the traffic phase."""
        base = datetime.combine(self.date, time(0), BEIJING).timestamp()
        span = self.close_s - self.open_s
        return int(base + self.open_s + at_s * span / self.duration_s)

    def at(self, lt: int) -> float:
        base = datetime.combine(self.date, time(0), BEIJING).timestamp()
        span = self.close_s - self.open_s
        return (lt - base - self.open_s) * self.duration_s / span


def fleet_world(
    seed: int,
    devices: Sequence[str],
    day: Day,
    receipts_per_board: int,
    outages: Mapping[str, list[tuple[float, float]]],
    causes: Mapping[str, int],
    no_response_pct: float = 0.5,
    full_pan_pct: float = 0.0,
) -> FleetWorld:
    b = Builder(seed, cases=1)
    rng = b.rng = random.Random(f"fleet:{seed}")
    b.start, b.days = day.date, 1
    # Correlate as of 16:00 on the day T1 money from this business day is due.
    b.as_of_date = due(day.lt(0), "T1", b.policy, b.cal).expected
    b.as_of = int(datetime.combine(b.as_of_date, time(16), BEIJING).timestamp())
    b.outages = {dev: [] for dev in devices}
    roles = _roles(len(devices), causes, rng)
    for i, dev in enumerate(devices):
        m = Merchant(
            mid=f"89844{seed % 1000:03d}{i:07d}",
            tid=f"{10000000 + i}",
            dev=dev,
            acquirer=_acquirer(i),
            role=roles[i],
            fee_rate=rng.choice(("0.0038", "0.0055", "0.0060")),
        )
        b.merchants.append(m)
    frames: dict[str, list[Frame]] = {}
    for m in b.merchants:
        frames[m.dev] = _trade(
            b, m, day, receipts_per_board, outages.get(m.dev, []), no_response_pct
        )
    _late(b, day, causes.get("timing", 0), frames)
    for t in b.txns:
        t.due_date = due(t.lt, t.extra.get("sm", "T1"), b.policy, b.cal).expected
    _inject(b, causes)
    missing = _missing(b, causes.get("file_missing", 0))
    b.payout_causes()
    world = FleetWorld(_settle(b, missing), frames)
    for dev_frames in frames.values():
        dev_frames.sort(key=lambda f: f.at_s)
    if full_pan_pct:
        _unmask(frames, full_pan_pct, random.Random(f"fullpan:{seed}"))
    return world


def _unmask(frames: dict[str, list[Frame]], pct: float, rng: random.Random) -> None:
    """`pct` % of the card frames carry the full PAN, as a non-compliant POS sends it.

    The full number masks back to the very PAN of the truth (same first 6 and last 4, the
    middle digits chosen so Luhn passes), so a correct agent stores exactly what the truth
    says; a separate random stream leaves the rest of the world as it was without it.
    """
    for dev_frames in frames.values():
        for i, frame in enumerate(dev_frames):
            pan = frame.body.get("pan")
            if isinstance(pan, str) and "*" in pan and rng.random() * 100 < pct:
                body = {**frame.body, "pan": full_pan(pan, rng)}
                dev_frames[i] = Frame(frame.at_s, body)


def full_pan(masked: str, rng: random.Random) -> str:
    """A Luhn-valid full PAN whose mask (first 6, stars, last 4) is `masked`."""
    middle = [str(rng.randrange(10)) for _ in range(len(masked) - 11)]
    head, tail = masked[:6] + "".join(middle), masked[-4:]
    for digit in "0123456789":  # one free digit: exactly one value makes the sum right
        candidate = head + digit + tail
        if luhn_ok(candidate):
            return candidate
    raise AssertionError("unreachable: one of ten digits always satisfies Luhn")


def _acquirer(i: int) -> str:
    """Most merchants on the first acquirer, a few on the others (as in a real portfolio)."""
    return ACQUIRERS[{1: 1, 4: 2}.get(i % 7, 0)]


def _roles(n: int, causes: Mapping[str, int], rng: random.Random) -> list[str]:
    roles = ["normal"] * n
    # Payout troubles hit whole merchants; keep most of the fleet normal.
    wanted = [("account", causes.get("account_problem", 0)), ("hold", causes.get("risk_hold", 0))]
    free = list(range(n))
    rng.shuffle(free)
    for role, count in wanted:
        for _ in range(min(count, n // 4)):
            roles[free.pop()] = role
    return roles


def _trade(
    b: Builder,
    m: Merchant,
    day: Day,
    count: int,
    down: list[tuple[float, float]],
    no_response_pct: float,
) -> list[Frame]:
    """`count` receipts for one merchant over the day; frames carry every state."""
    rng = b.rng
    frames: list[Frame] = []
    moments = sorted(rng.uniform(0.5, day.duration_s - 0.5) for _ in range(count))
    i = 0
    while i < len(moments):
        at = moments[i]
        lt = day.lt(at)
        roll = rng.random() * 100
        outage = next(((a, e) for a, e in down if a <= at < e), None)
        amt = rng.choice(AMOUNTS) + rng.randrange(100)
        t = Txn(m=m, trc=b.trc(m), typ="sale", amt=amt, lt=lt)
        t.pan, t.ck = b.pan()
        t.extra["sm"] = m.settle_type
        b.txns.append(t)
        if outage is not None or roll < no_response_pct:
            # No response from the host: the terminal reverses when its link is back.
            back = outage[1] if outage is not None else at + 2
            t.states += [("no_response", lt), ("reversed", day.lt(back + 1))]
            t.extra["rv"] = "98"
            t.injected = "network_reversed"
            frames += [
                Frame(at, _receipt(t, "no_response", lt)),
                Frame(back + 1, _receipt(t, "reversed", day.lt(back + 1))),
            ]
        elif roll < no_response_pct + 3:
            t.rrn = b.rrn()
            t.extra["rc"] = "51"
            t.states.append(("declined", lt))
            frames.append(Frame(at, _receipt(t, "declined", lt)))
        elif roll < no_response_pct + 6 and i + 1 < len(moments):
            # A sale voided by the merchant a little later: two receipts, one more frame.
            t.rrn = b.rrn()
            t.states.append(("approved", lt))
            later = moments[i + 1]
            void = Txn(
                m=m,
                trc=b.trc(m),
                typ="void",
                amt=t.amt,
                lt=day.lt(later),
                pan=t.pan,
                ck=t.ck,
                rrn=b.rrn(),
                injected="void",
            )
            void.extra.update(otrc=t.trc, orrn=t.rrn, sm=m.settle_type)
            void.states.append(("approved", void.lt))
            t.states.append(("voided", void.lt))
            t.injected = "voided"
            b.txns.append(void)
            frames += [
                Frame(at, _receipt(t, "approved", lt)),
                Frame(later, _receipt(void, "approved", void.lt)),
                Frame(later, _receipt(t, "voided", void.lt)),
            ]
            i += 1  # the void used the next moment
        else:
            t.rrn = b.rrn()
            t.states.append(("approved", lt))
            frames.append(Frame(at, _receipt(t, "approved", lt)))
        i += 1
    return frames


def _late(b: Builder, day: Day, count: int, frames: dict[str, list[Frame]]) -> None:
    """`timing`: approved sales rung up after the 23:00 day cut count for the next day."""
    cut = datetime.combine(day.date, b.policy.day_cut, BEIJING).timestamp()
    approved = [
        t
        for t in b.txns
        if t.typ == "sale"
        and t.states == [("approved", t.lt)]
        and not t.injected
        and t.m.role == "normal"
    ]
    for t in b.rng.sample(approved, min(count, len(approved))):
        new_lt = int(cut) + b.rng.randrange(60, 3000)
        for f in frames[t.m.dev]:
            if f.body["trc"] == t.trc:
                f.body["lt"] = new_lt
        t.lt, t.states = new_lt, [("approved", new_lt)]


def _inject(b: Builder, causes: Mapping[str, int]) -> None:
    approved = [
        t
        for t in b.txns
        if t.typ == "sale"
        and not t.injected
        and t.states[-1][0] == "approved"
        and t.m.role == "normal"
        and t.due_date is not None
        and t.due_date <= b.as_of_date
    ]
    b.rng.shuffle(approved)
    for t in approved[: causes.get("fee", 0)]:
        t.injected = "over_fee"  # the acquirer charged more than the agreed rate
    # The acquirer's bad day: due sales of many of its merchants missing from its file (as
    # many as the generator's own acquirer-day case), on the biggest acquirers first.
    by_size = sorted(ACQUIRERS, key=lambda a: -sum(1 for m in b.merchants if m.acquirer == a))
    for acq in by_size[: causes.get("acquirer_side", 0)]:
        mine = [t for t in approved if t.m.acquirer == acq and not t.injected]
        for t in mine[:ACQUIRER_DAY_ROWS]:
            t.injected = "acquirer_side"


def _missing(b: Builder, count: int) -> set[tuple[str, date]]:
    """`file_missing`: acquirer-days whose settlement file is never imported."""
    hit = {t.m.acquirer for t in b.txns if t.injected == "acquirer_side"}
    rows: dict[tuple[str, date], int] = {}
    for t in b.txns:
        if t.due_date is not None and t.due_date <= b.as_of_date and t.m.acquirer not in hit:
            key = (t.m.acquirer, t.due_date)
            rows[key] = rows.get(key, 0) + 1
    return set(sorted(rows, key=lambda k: (rows[k], k))[:count])  # the smallest files


def receipts_of(world: FleetWorld) -> int:
    return sum(len(f) for f in world.frames.values())


def import_settlement(store: Store, world: FleetWorld, folder: Path) -> list[ImportResult]:
    """Write the acquirers' files and import them as of the world's correlation time.

    An acquirer that paid nothing on a day sends no payout file: the generic writer's empty
    payout files (which the importer cannot date) are left out.
    """
    results = []
    for path, acquirer in write_files(world.scenario, folder):
        if "payout" in path.name and len(path.read_bytes().splitlines()) <= 1:
            path.unlink()
            continue
        results.append(import_file(store, path, acquirer=acquirer, now=world.scenario.as_of))
    return results
