"""The generator's data model: merchants, their transactions and outages, the ground truth
of each transaction, and the scenario that holds them; plus the fee rule both sides use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from daozhang.units import BEIJING

ACQUIRERS = ("ACQ01", "ACQ02", "ACQ03")
TERMINAL_CAUSES = (
    "network_reversed",
    "reversal_pending",
    "reversal_failed",
    "duplicate_charge_risk",
    "late_upload",
    "preauth_open",
)
# Terminal-side causes injected apart from the network's (world.py terminal_faults), with a
# generator of their own so that adding them left every earlier scenario as it was.
DEVICE_CAUSES = ("terminal_fault", "terminal_misconfigured")
RESERVE_RATE = "0.1000"
MAINTENANCE = "清算系统升级 clearing system upgrade"
FAIL_REASONS = {"failed": "账户已冻结 account frozen", "bounced": "收款账户已销户 account closed"}


@dataclass
class Truth:
    status: str
    cause: str = ""
    data: str = "complete"


@dataclass
class Merchant:
    mid: str
    tid: str
    dev: str
    acquirer: str
    settle_type: str = "T1"
    fee_rate: str = "0.0060"
    d0_surcharge: str = "0"
    status: str = "active"
    role: str = "normal"  # normal | account | hold | d0 | silent | lost
    reserve_rate: str = "0"  # a reserve of each payout (merchants file), released on ...
    reserve_release: str = ""
    bad_dates: dict[date, str] = field(default_factory=dict)  # payout date -> injected trouble


@dataclass
class Txn:
    m: Merchant
    trc: str
    typ: str
    amt: int
    lt: int
    pan: str = ""
    ck: str = ""
    ch: str = "card"
    rrn: str = ""
    states: list[tuple[str, int]] = field(default_factory=list)  # (st, time recorded)
    extra: dict[str, Any] = field(default_factory=dict)  # rv, otrc, orrn, sd, sm
    detail: dict[str, Any] | None = None  # the acquirer's row, if it has one
    settle_delay_days: int = 0  # late_upload: the row lands on a later date
    reported: bool = True  # False: the device never uploads the receipt
    injected: str = ""  # the terminal-side cause, or a data/acquirer injection
    due_date: date | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.m.mid, self.tid, "000001", self.trc)

    @property
    def tid(self) -> str:
        """The terminal number on the receipt: the merchant's, unless the terminal was set up
        with another (`terminal_misconfigured`)."""
        return str(self.extra.get("tid", self.m.tid))


@dataclass
class Outage:
    start: int
    end: int
    stage: str
    why: str


@dataclass
class Scenario:
    seed: int
    start: date
    days: int
    as_of: int
    merchants: list[Merchant]
    txns: list[Txn]
    outages: dict[str, list[Outage]]
    silent_from: dict[str, int]
    lost: dict[str, list[tuple[str, ...]]]  # dev -> natural keys (trc) the journal lost
    missing_files: set[tuple[str, date]]
    truth: dict[tuple[str, ...], Truth]
    payouts: list[dict[str, Any]]
    detail_rows: dict[tuple[str, date], list[dict[str, Any]]]
    # dev -> (time, cause) of restarts besides the first power-on and the brownouts of losses
    reboots: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # (acquirer, start, end, what): announced maintenance windows (settle notices import)
    notices: list[tuple[str, int, int, str]] = field(default_factory=list)

    @property
    def as_of_date(self) -> date:
        return datetime.fromtimestamp(self.as_of, BEIJING).date()


def beijing_time(day: date, seconds: int) -> int:
    base = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    return int(base.timestamp()) + seconds


def fee_of(amt: int, rate: str, ck: str, cap: int | None) -> int:
    fee = int((Decimal(amt) * Decimal(rate)).quantize(Decimal(1), ROUND_HALF_UP))
    return min(fee, cap) if (ck == "D" and cap is not None) else fee


DEBIT_CAP = 2000  # 20 yuan: the usual cap on a debit card's fee
