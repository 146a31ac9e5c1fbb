"""One view per payout (issue 24): what the acquirer's rows add up to, against what reached
the merchant's account, with the payout's transactions under it.

    gross − fees − refunds − holds = net   (vs reached)

gross: the amounts of the rows paid in; fees: their fees and the payout's own charge (a D0
surcharge); refunds: what the rows paid back (negative rows, fee returned); holds: suspended
and retained money. `net` is what the account should have got; `reached` is what the payout
file says it got (nothing unless paid). A failed payout is one row here, not one per sale.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from daozhang.correlate.data import Data, Payout
from daozhang.correlate.finding import Finding


@dataclass
class PayoutView:
    payout: Payout
    finding: Finding | None  # the payout's own finding (status, cause, explanation)
    gross: int = 0
    fees: int = 0
    refunds: int = 0
    holds: int = 0
    rows_net: int = 0  # what its detail rows add up to (the plan should say the same)
    n_rows: int = 0
    transactions: list[Finding] = field(default_factory=list)  # [] once a tally dropped them
    n_transactions: int = 0
    n_bad: int = 0  # of them, money missing (gap or paid short)

    @property
    def net(self) -> int:
        return self.gross - self.fees - self.refunds - self.holds

    @property
    def reached(self) -> int:
        return self.payout.real_fen if self.payout.state == "paid" else 0

    @property
    def missing(self) -> int:
        """Net money that did not reach the account (0 while only pending)."""
        if self.finding is not None and self.finding.status == "pending":
            return 0
        return max(0, self.net - self.reached)

    @property
    def adds_up(self) -> bool:
        """The rows' net amounts are the payout's plan: the two files agree."""
        return self.n_rows == 0 or self.rows_net == self.payout.plan_fen

    @property
    def day(self) -> date:
        return date.fromisoformat(self.payout.settle_date)


def views(data: Data, findings: list[Finding]) -> list[PayoutView]:
    """Every payout, most money missing first, then newest."""
    own = {f.payout_id: f for f in findings if f.kind == "payout"}
    out = {pid: PayoutView(p, own.get(pid)) for pid, p in data.payouts.items()}
    for d in data.all_detail():
        v = out.get(d.payout_id)
        if v is None or d.check_flag == "B":
            continue
        v.n_rows += 1
        v.rows_net += d.settle_amt
        if d.settle_amt < 0:
            v.refunds -= d.settle_amt
        else:
            v.gross += d.amt
            v.fees += d.fee
    for v in out.values():
        p = v.payout
        v.fees += p.fee_fen
        v.holds = p.suspend_fen + p.retained_fen
        if not v.n_rows:
            # No detail rows for it: the plan is all we know of what it carried.
            v.gross = p.plan_fen
    by_payout: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        # A refund or a voided row has no money of its own, but its row names the payout.
        pid = f.payout_id or (f.row.payout_id if f.row is not None else "")
        if f.kind == "transaction" and pid in out:
            by_payout[pid].append(f)
    for pid, members in by_payout.items():
        members.sort(key=lambda f: (f.lt or 0, f.trc))
        v = out[pid]
        v.transactions = members
        v.n_transactions = len(members)
        v.n_bad = sum(1 for t in members if t.status in ("gap", "settled_short"))
    return sorted(out.values(), key=_order)


def _order(v: PayoutView) -> tuple[int, int, str]:
    """Most money missing first, then newest."""
    return (-v.missing, -v.day.toordinal(), v.payout.payout_id)


class PayoutTally:
    """The payout views of a stream of chunks (correlate/stream.py), each chunk's payouts
    whole in it: the `keep` views missing the most money (None: all), their transactions only
    for the first `with_transactions` of them, and the count and money of the rest."""

    def __init__(self, keep: int | None, with_transactions: int = 0) -> None:
        self.keep = keep
        self.with_transactions = with_transactions
        self.views: list[PayoutView] = []
        self.n = 0
        self.missing = 0

    def add(self, data: Data, findings: list[Finding]) -> None:
        for v in views(data, findings):
            self.n += 1
            self.missing += v.missing
            if not self.with_transactions:
                v.transactions = []
            self.views.append(v)
        if self.keep is not None and len(self.views) >= 2 * self.keep + 1_000:
            self._trim()

    def _trim(self) -> None:
        self.views.sort(key=_order)
        if self.keep is not None:
            del self.views[self.keep :]
        for v in self.views[self.with_transactions :]:
            v.transactions = []

    def result(self) -> list[PayoutView]:
        """The views kept, most missing money first."""
        self._trim()
        return self.views
