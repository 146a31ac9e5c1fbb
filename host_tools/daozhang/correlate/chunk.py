"""What classification reads for one range of merchants, for the chunked run (stream.py).

Every rule but one looks within a merchant: a receipt's detail row, its voids and
completions, its re-swipes, the merchant's payouts. (A completion or void that names its
original by RRN alone may carry another merchant's number: what they name is read once for
the whole store, `Shared.closed_rrn`.) So the store is read a range of merchant
numbers at a time (the merchants table cut into ranges of about `RECEIPTS_PER_CHUNK`
receipts; the first and last ranges are open, so a receipt of a merchant the table lacks is
read too): its receipts with their RRN-joined rows, its unclaimed rows, its payouts, and the
timelines of the devices they name. What every chunk needs is read once (`Shared`): the
merchants, notices, imported files, terminals, refusals and the payouts (a small table, held
by merchant). The one rule across merchants, `acquirer_side`, is decided in stream.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from daozhang.collector.quarantine_read import Refusal
from daozhang.correlate.data import (
    _MATCHED_SQL,
    _N_R,
    _UNMATCHED_SQL,
    Data,
    Detail,
    Merchant,
    Payout,
    Receipt,
    Timeline,
    _files,
    _refused,
    _terminals,
    by_rrn,
    closing_rrns,
    load_merchants,
    load_notices,
    timelines_of,
)
from daozhang.settle.notices import Notice
from daozhang.store import Store, Transaction

RECEIPTS_PER_CHUNK = 40_000  # about 200 MB of receipts, rows and findings in Python
_DEVICES_PER_QUERY = 400  # devices named in one `IN (...)`


@dataclass
class Shared:
    merchants: dict[str, Merchant]
    notices: dict[str, list[Notice]]
    detail_files: set[tuple[str, str]]
    payout_files: set[tuple[str, str]]
    terminal_dev: dict[tuple[str, str], str]
    refused: dict[tuple[str, str], Refusal]
    payouts: dict[str, dict[str, Payout]]  # by merchant, then payout id (latest row wins)
    closed_rrn: set[str]  # what completions and voids name, whichever merchant's (Data)

    def data(self, receipts: list[Receipt], matched: list[Detail | None],
             detail: list[Detail], payouts: dict[str, Payout],
             timelines: dict[str, Timeline]) -> Data:  # fmt: skip
        return Data(receipts, matched, detail, payouts, self.merchants, self.detail_files,
                    self.payout_files, timelines, self.terminal_dev, self.refused,
                    self.notices, closed_rrn=self.closed_rrn)  # fmt: skip


def shared(store: Store, tx: Transaction) -> Shared:
    payouts: dict[str, dict[str, Payout]] = defaultdict(dict)
    for row in tx.execute(
        "SELECT payout_id, mid, settle_type, settle_date, plan_fen, fee_fen, suspend_fen,"
        " retained_fen, real_fen, state, fail_reason, bank_account FROM payouts"
        " ORDER BY file_id, line"
    ):
        p = Payout(*row)
        payouts[p.mid][p.payout_id] = p
    detail_files, payout_files = _files(tx)
    return Shared(load_merchants(tx), load_notices(tx), detail_files, payout_files,
                  _terminals(tx), _refused(store, None), dict(payouts),
                  closing_rrns(tx))  # fmt: skip


Range = tuple[str | None, str | None]  # merchant numbers lo <= mid < hi; None: open


def ranges(tx: Transaction, merchants: dict[str, Merchant], per_chunk: int) -> list[Range]:
    """The merchant ranges of about `per_chunk` receipts each, cut at registered merchants."""
    mids = sorted(merchants)
    total = int(tx.execute("SELECT COUNT(*) FROM receipts")[0][0])
    per_merchant = max(1, total // max(1, len(mids)))
    step = max(1, per_chunk // per_merchant)
    cuts: list[str | None] = [None, *mids[step::step], None]
    return list(pairwise(cuts))


def _where(prefix: str, lo: str | None, hi: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if lo is not None:
        clauses.append(f"{prefix}mid >= ?")
        params.append(lo)
    if hi is not None:
        clauses.append(f"{prefix}mid < ?")
        params.append(hi)
    return " AND ".join(clauses) or "1 = 1", params


def load_range(tx: Transaction, common: Shared, span: Range, as_of: int) -> Data:
    """Everything classification reads about the merchants of `span` (module doc)."""
    lo, hi = span
    receipts: list[Receipt] = []
    matched: list[Detail | None] = []
    last: tuple[Any, ...] = ()
    where, params = _where("r.", lo, hi)
    for row in tx.execute(f"{by_rrn(tx, _MATCHED_SQL)} WHERE {where}", params):
        key = row[:4]
        if key == last:
            continue  # a second detail row with this RRN: the first match wins (data.load)
        last = key
        receipts.append(Receipt._make(row[:_N_R]))
        matched.append(None if row[_N_R] is None else Detail._make(row[_N_R:]))
    dwhere, dparams = _where("d.", lo, hi)
    unmatched = f"{by_rrn(tx, _UNMATCHED_SQL)} AND {dwhere}"
    detail = [Detail._make(row) for row in tx.execute(unmatched, dparams)]
    payouts: dict[str, Payout] = {}
    for mid, held in common.payouts.items():
        if (lo is None or mid >= lo) and (hi is None or mid < hi):
            payouts.update(held)
    devices = {r.dev for r in receipts}
    devices |= {dev for d in detail if (dev := common.terminal_dev.get((d.mid, d.tid)))}
    return common.data(receipts, matched, detail, payouts, timelines(tx, devices, as_of))


def timelines(tx: Transaction, devices: set[str], as_of: int) -> dict[str, Timeline]:
    out: dict[str, Timeline] = {}
    named = sorted(devices - {""})
    for i in range(0, len(named), _DEVICES_PER_QUERY):
        out.update(timelines_of(tx, named[i : i + _DEVICES_PER_QUERY], as_of))
    return out
