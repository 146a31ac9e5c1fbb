"""Building a scenario: merchants, terminals, transactions, outages and settlement, with ground
truth (the data model is `model.py`).

`generate(seed)` builds one week of a small fleet around a date the seed picks (often a public
holiday). Every injected cause and data value of DESIGN §2.2 appears `cases` times or more
(with the project's one added data value, `refused`: see correlate/README.md),
among noise: healthy devices, outages that hurt nothing, offline approvals uploaded in time,
QR payments, voids, completed pre-authorisations, and a fee on every transaction.

Ground truth and the acquirer's side are decided in scenario.py. Correlation never sees
these modules; it only sees the store.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from daozhang.correlate.finding import BANK_GRACE_DAYS
from daozhang.lab.sim.model import (
    ACQUIRERS,
    MAINTENANCE,
    RESERVE_RATE,
    TERMINAL_CAUSES,
    Merchant,
    Outage,
    Txn,
    beijing_time,
)
from daozhang.settle.calendar import WorkingCalendar
from daozhang.settle.policy import Policy, due
from daozhang.units import BEIJING

HOLIDAY_STARTS = (
    "2024-02-05",
    "2024-09-28",
    "2025-01-23",
    "2025-01-30",
    "2024-04-29",
    "2025-09-28",
    "2024-12-27",
    "2025-05-29",
    "2024-06-06",
)


class Builder:
    def __init__(self, seed: int, cases: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.cases = cases
        self.cal = WorkingCalendar()
        self.policy = Policy()
        rng = self.rng
        if rng.random() < 0.6:
            self.start = date.fromisoformat(rng.choice(HOLIDAY_STARTS))
        else:
            self.start = date(2024, 3, 4) + timedelta(days=rng.randrange(560))
        # Trade on days 0..days-1 and on the as_of day until 15:30; as_of is 16:00 that day.
        self.days = 9
        self.as_of_date = self.start + timedelta(days=self.days)
        self.as_of = beijing_time(self.as_of_date, 16 * 3600)
        self.merchants: list[Merchant] = []
        self.txns: list[Txn] = []
        self.outages: dict[str, list[Outage]] = {}
        self.silent_from: dict[str, int] = {}
        self.lost: dict[str, list[tuple[str, ...]]] = {}
        self.reboots: dict[str, list[tuple[int, str]]] = {}
        self.notices: list[tuple[str, int, int, str]] = []
        self._rrn = 0
        self._trc: dict[str, int] = {}

    # -- ids ----------------------------------------------------------------------------------
    def rrn(self) -> str:
        self._rrn += 1
        return f"{self.seed % 97:02d}{self._rrn:010d}"

    def trc(self, m: Merchant) -> str:
        self._trc[m.mid] = self._trc.get(m.mid, 0) + 1
        return f"{self._trc[m.mid]:06d}"

    def pan(self, rng: random.Random | None = None) -> tuple[str, str]:
        rng = rng or self.rng
        bins = (("622848", "D"), ("621700", "D"), ("625807", "C"), ("436742", "C"))
        b, kind = rng.choice(bins)
        return f"{b}******{rng.randrange(10000):04d}", kind

    # -- fleet --------------------------------------------------------------------------------
    def fleet(self) -> None:
        roles = ["normal"] * 24 + ["account"] * 4 + ["hold"] * 4 + ["d0"] * 3
        roles += ["silent"] * 3 + ["lost"] * 3
        for i, role in enumerate(roles):
            acq = ACQUIRERS[i % len(ACQUIRERS)]
            m = Merchant(
                mid=f"8983{self.seed % 1000:03d}{i:08d}",
                tid=f"T{self.seed % 1000:03d}{i:04d}",
                dev=f"sim{self.seed}-{i:03d}",
                acquirer=acq,
                fee_rate=self.rng.choice(("0.0038", "0.0055", "0.0060")),
                role=role,
            )
            if role == "d0":
                m.settle_type, m.d0_surcharge = "D0", "0.0010"
            elif role == "normal" and i % 7 == 3:
                m.settle_type = "D1"
            self.merchants.append(m)
            self.outages[m.dev] = []

    def normal(self) -> list[Merchant]:
        return [m for m in self.merchants if m.role == "normal"]

    def sale(
        self,
        m: Merchant,
        lt: int,
        st: str = "approved",
        qr: bool = False,
        rng: random.Random | None = None,
    ) -> Txn:
        rng = rng or self.rng
        amt = rng.choice((1000, 2500, 3800, 9900, 15000, 28800, 66600, 128000, 300000))
        amt += rng.randrange(100)
        t = Txn(m=m, trc=self.trc(m), typ="sale", amt=amt, lt=lt)
        if qr:
            t.ch = "qr"
            # DESIGN §2.3: a QR sale's own keys (no RNG drawn: scenarios stay as they were).
            t.extra["ord"] = f"DZ{m.mid[-6:]}-{lt}-{t.trc}"
            t.extra["xid"] = f"4200{lt:010d}{t.trc}{len(self.txns):08d}"
        else:
            t.pan, t.ck = self.pan(rng)
        t.states.append((st, lt + 2))
        if st not in ("no_response", "offline_pending", "offline_sent"):
            t.rrn = self.rrn()
        t.extra["sm"] = m.settle_type
        self.txns.append(t)
        return t

    def business_time(self, day: date) -> int:
        # Shops trade 08:00-23:30; a few transactions fall after the 23:00 day cut.
        return beijing_time(day, self.rng.randrange(8 * 3600, 23 * 3600 + 1800))

    def outage(self, m: Merchant, start: int, length: int, stage: str = "") -> Outage:
        stage = stage or self.rng.choice(("link", "dns", "tcp", "tls", "mqtt"))
        why = {
            "link": "no carrier",
            "dns": "timeout",
            "tcp": "ECONNREFUSED",
            "tls": "handshake",
            "mqtt": "CONNACK timeout",
        }[stage]
        o = Outage(start, start + length, stage, why)
        self.outages[m.dev].append(o)
        return o

    # -- ordinary trade (noise) ----------------------------------------------------------------
    def trade(self) -> None:
        for m in self.merchants:
            for d in range(self.days):
                day = self.start + timedelta(days=d)
                for _ in range(self.rng.randrange(4, 8)):
                    self.sale(m, self.business_time(day), qr=self.rng.random() < 0.2)
            for _ in range(self.rng.randrange(1, 4)):
                lt = beijing_time(self.as_of_date, self.rng.randrange(8 * 3600, 15 * 3600 + 1800))
                self.sale(m, lt, qr=self.rng.random() < 0.2)
        for m in self.normal():
            # Outages that hurt nothing: at night, or short ones the POS rode through.
            for d in range(self.days):
                if self.rng.random() < 0.5:
                    self.outage(m, beijing_time(self.start + timedelta(days=d), 3 * 3600), 1800)
            day = self.start + timedelta(days=self.rng.randrange(self.days))
            o = self.outage(m, beijing_time(day, 12 * 3600 + self.rng.randrange(3600)), 900)
            t = self.sale(m, o.start + 300, st="offline_pending")
            t.states.append(("offline_sent", o.end + 60))
            t.rrn = self.rrn()
            # Declines, voids, refunds-free: the merchant's own undoing is not missing money.
            d1 = self.sale(m, self.business_time(day), st="declined")
            d1.extra["rc"] = "51"
            v = self.sale(m, self.business_time(day))
            v.states.append(("voided", v.lt + 600))
            void = Txn(
                m=m,
                trc=self.trc(m),
                typ="void",
                amt=v.amt,
                lt=v.lt + 590,
                pan=v.pan,
                ck=v.ck,
                rrn=self.rrn(),
                injected="void",
            )
            void.extra.update(otrc=v.trc, orrn=v.rrn, sm=m.settle_type)
            void.states.append(("approved", void.lt + 2))
            v.injected = "voided"
            self.txns.append(void)
            # A completed pre-authorisation.
            p = self.sale(m, self.business_time(day))
            p.typ, p.injected = "preauth", "preauth_done"
            done = Txn(
                m=m,
                trc=self.trc(m),
                typ="preauth_done",
                amt=p.amt,
                lt=p.lt + 3600,
                pan=p.pan,
                ck=p.ck,
                rrn=self.rrn(),
            )
            done.extra.update(otrc=p.trc, orrn=p.rrn, sm=m.settle_type)
            done.states.append(("approved", done.lt + 2))
            self.txns.append(done)

    # -- injected causes -----------------------------------------------------------------------
    def early_time(self) -> tuple[Merchant, int]:
        """A normal merchant and a time whose money is due by as_of."""
        m = self.rng.choice(self.normal())
        day = self.start + timedelta(days=self.rng.randrange(self.days - 3))
        return m, beijing_time(day, self.rng.randrange(9 * 3600, 21 * 3600))

    def terminal_causes(self) -> None:
        for cause in TERMINAL_CAUSES:
            # Late uploads often settle anyway (late, but paid): inject more of them.
            for _ in range(self.cases * (2 if cause == "late_upload" else 1)):
                m, lt = self.early_time()
                o = self.outage(m, lt - self.rng.randrange(5, 120), self.rng.randrange(200, 1500))
                if cause == "preauth_open":
                    t = self.sale(m, lt)
                    t.typ = "preauth"
                elif cause == "late_upload":
                    # Approved offline in an outage that lasted past the day's cut-off.
                    o.end = beijing_time(
                        datetime.fromtimestamp(lt, BEIJING).date(), 23 * 3600 + 1200
                    )
                    t = self.sale(m, lt, st="offline_pending")
                    if self.rng.random() < 0.5:
                        t.states.append(("offline_sent", o.end + 30))
                        t.rrn = self.rrn()
                        t.settle_delay_days = 1
                else:
                    t = self.sale(m, lt, st="no_response")
                    if cause == "network_reversed":
                        t.states.append(("reversed", o.end + 5))
                        t.extra["rv"] = "98"
                    elif cause in ("reversal_pending", "reversal_failed"):
                        t.states.append((cause, lt + 40))
                        t.extra["rv"] = "98"
                    else:  # a re-swipe of the same card and amount after no response
                        again = self.sale(m, lt + self.rng.randrange(60, 300))
                        again.pan, again.ck, again.amt = t.pan, t.ck, t.amt
                        again.ch = t.ch = "card"
                        again.injected = "reswipe"
                t.injected = cause

    def terminal_faults(self) -> None:
        """Sales the terminal itself broke (DESIGN §2.3 `terminal_fault`), with the link up:
        half reversed for a fault after approval (`rv` 96), half left without a response by a
        watchdog reset or crash seconds later. Drawn from a generator of their own, after
        everything else, so that the rest of the scenario is what it was before they existed."""
        rng = random.Random(self.seed * 7919 + 24)
        for n in range(self.cases):
            for _ in range(50):
                m = rng.choice(self.normal())
                day = self.start + timedelta(days=rng.randrange(self.days - 3))
                lt = beijing_time(day, rng.randrange(9 * 3600, 21 * 3600))
                if self._quiet(m, lt):
                    break
            t = self.sale(m, lt, st="no_response", rng=rng)
            if n % 2:
                t.rrn = self.rrn()
                t.states.append(("reversed", lt + 8))
                t.extra["rv"] = "96"
            else:
                cause = rng.choice(("watchdog", "crash"))
                self.reboots.setdefault(m.dev, []).append((lt + rng.randrange(10, 200), cause))
            t.injected = "terminal_fault"

    def maintenance(self, busy: list[tuple[str, date]], skip: set[str]) -> None:
        """An acquirer announced a clearing upgrade (01:00-05:00) on its busiest day: what it
        did not clear for that day is explained by it (DESIGN §2.3 `acquirer_maintenance`).
        `busy` is most transactions first; `skip` the acquirers other causes already use."""
        for acq, day in busy:
            if acq in skip or day >= self.as_of_date:
                continue
            self.notices.append(
                (acq, beijing_time(day, 3600), beijing_time(day, 5 * 3600), MAINTENANCE)
            )
            taken: dict[str, int] = {}
            for t in self.txns:
                if (
                    t.m.acquirer == acq
                    and t.m.role == "normal"
                    and t.m.settle_type == "T1"
                    and t.due_date == day
                    and t.typ == "sale"
                    and not t.injected
                    and t.states[-1][0] == "approved"
                    and taken.get(t.m.mid, 0) < 4
                ):
                    t.injected = "acquirer_maintenance"
                    taken[t.m.mid] = taken.get(t.m.mid, 0) + 1
            return

    def misconfigured(self, skip: set[tuple[str, date]]) -> None:
        """Sales from terminals set up with a wrong terminal number (DESIGN §2.3
        `terminal_misconfigured`): the acquirer has no row under it. Not on acquirer-days
        whose file is missing (`skip`) or near an announced window."""
        rng = random.Random(self.seed * 7919 + 26)
        for n in range(self.cases):
            for _ in range(50):
                m = rng.choice(self.normal())
                day = self.start + timedelta(days=rng.randrange(self.days - 3))
                lt = beijing_time(day, rng.randrange(9 * 3600, 21 * 3600))
                expected = due(lt, m.settle_type, self.policy, self.cal).expected
                end = beijing_time(expected, 86_399)
                windowed = any(
                    a == m.acquirer and start <= end and stop >= lt
                    for a, start, stop, _ in self.notices
                )
                if (
                    self._quiet(m, lt)
                    and expected < self.as_of_date  # due: its gap is for the settings to explain
                    and (m.acquirer, expected) not in skip
                    and not windowed
                ):
                    break
            else:
                continue  # no quiet, due moment found for this one
            t = self.sale(m, lt, rng=rng)
            t.extra["tid"] = f"X{m.tid[1:-2]}{n % 100:02d}"
            t.due_date = expected
            t.injected = "terminal_misconfigured"

    def reserves(self) -> None:
        """Two merchants keep a reserve of each payout until a month after the scenario
        (DESIGN §2.3 `settlement_delay`): their payouts are short by it and not missing."""
        rng = random.Random(self.seed * 7919 + 27)
        plain = [m for m in self.normal() if m.settle_type == "T1"]
        for m in rng.sample(plain, 2):
            m.reserve_rate = RESERVE_RATE
            m.reserve_release = (self.as_of_date + timedelta(days=30)).isoformat()

    def _quiet(self, m: Merchant, lt: int) -> bool:
        """No outage, restart or other injected sale of this device within 20 minutes."""
        if any(o.start - 1200 <= lt <= o.end + 1200 for o in self.outages[m.dev]):
            return False
        if any(abs(t - lt) < 1200 for t, _ in self.reboots.get(m.dev, ())):
            return False
        return not any(t.m is m and t.injected and abs(t.lt - lt) < 1200 for t in self.txns)

    def acquirer_causes(self, group: tuple[str, date], skip: set[tuple[str, date]]) -> None:
        """Rows the acquirer lost: a whole acquirer-day of merchants, and isolated ones."""
        acq, day = group
        group_ms = [m.mid for m in self.normal() if m.acquirer == acq and m.settle_type == "T1"]
        taken: dict[str, int] = {}
        for t in self.txns:
            if (
                t.m.mid in group_ms
                and t.due_date == day
                and t.typ == "sale"
                and not t.injected
                and t.states[-1][0] == "approved"
                and taken.get(t.m.mid, 0) < 6
            ):
                t.injected = "acquirer_side"
                taken[t.m.mid] = taken.get(t.m.mid, 0) + 1
        per_group: dict[tuple[str, date], set[str]] = {}
        candidates = [
            t
            for t in self.txns
            if t.typ == "sale"
            and not t.injected
            and t.m.role == "normal"
            and t.states[-1][0] == "approved"
            and t.due_date is not None
            and t.due_date <= self.as_of_date
        ]
        self.rng.shuffle(candidates)
        count = 0
        for t in candidates:
            assert t.due_date is not None
            g = (t.m.acquirer, t.due_date)
            if g == group or g in skip or count >= self.cases + 5:
                continue
            seen = per_group.setdefault(g, set())
            if t.m.mid not in seen and len(seen) >= 2:
                continue  # two merchants at most: isolated, not the acquirer's whole day
            seen.add(t.m.mid)
            t.injected, count = "unknown", count + 1

    def data_causes(self) -> None:
        for m in self.merchants:
            if m.role == "silent":
                self.silent_from[m.dev] = beijing_time(self.start + timedelta(days=2), 13 * 3600)
                for t in self.txns:
                    if t.m is m and t.states[0][1] >= self.silent_from[m.dev] - 1200:
                        t.reported, t.injected = False, "still_buffered"
            elif m.role == "lost":
                mine = sorted((t for t in self.txns if t.m is m), key=lambda t: t.lt)
                first = self.rng.randrange(5, 12)
                gone = mine[first : first + self.rng.randrange(12, 16)]
                for t in gone:
                    t.reported, t.injected = False, "device_data_loss"
                self.lost[m.dev] = [t.key for t in gone]
        # Healthy devices that never reported a transaction the acquirer has.
        candidates = [
            t
            for t in self.txns
            if t.m.role == "normal"
            and not t.injected
            and t.typ == "sale"
            and t.states[-1][0] == "approved"
        ]
        for t in self.rng.sample(candidates, self.cases + 20):
            t.reported, t.injected = False, "no_receipt"
        # Card receipts the collector refuses: the device uploads them with the full card
        # number (a co-processor firmware that did not mask it), so each is quarantined as
        # `pan_unmasked` and correlation must say `refused`, not `no_receipt`.
        carded = [t for t in candidates if t.pan and not t.injected]
        for t in self.rng.sample(carded, self.cases):
            t.reported, t.injected = False, "refused"

    def payout_causes(self) -> None:
        for m in self.merchants:
            if m.role not in ("account", "hold"):
                continue
            due_days = sorted(
                {
                    t.due_date
                    for t in self.txns
                    if t.m is m and t.due_date and t.due_date <= self.as_of_date
                }
            )
            for day in self.rng.sample(due_days, min(3, len(due_days))):
                # A payout still in progress two days after its date is late at the bank.
                bank_late = (self.as_of_date - day).days > BANK_GRACE_DAYS
                if m.role == "account":
                    troubles = ("failed", "bounced") + (("in_progress",) * 2 if bank_late else ())
                    m.bad_dates[day] = self.rng.choice(troubles)
                else:
                    m.bad_dates[day] = self.rng.choice(("frozen", "suspend", "retained"))
            if m.role == "account" and self.rng.random() < 0.3:
                m.status = "frozen"
