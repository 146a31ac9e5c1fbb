"""Which transactions fit what a caller has: the RRN, the slip's terminal and trace (凭证号), a
merchant's day, an amount around a time (with the card's last four digits when it was a card),
or a QR sale's order number. Each form is one index range (core migrations 8 and 9, settle 5).

A transaction is a receipt, or a settlement row no receipt claims (the acquirer has it, the
terminal never reported it): both are searched, and a row claimed by a receipt is the
receipt's. Matches come best first (nearest the time asked about, then latest).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from daozhang.correlate.data import ReceiptKey, RowId
from daozhang.store import Store, Transaction
from daozhang.units import BEIJING

# Enough for a merchant's busy day; more than a person on the phone can tell apart.
MAX_MATCHES = 20


@dataclass(frozen=True)
class Query:
    rrn: str | None = None
    tid: str | None = None
    trace: str | None = None
    mid: str | None = None
    fen: int | None = None
    lo: int | None = None  # sale time range, unix s, inclusive
    hi: int | None = None
    around: int | None = None  # the time the caller named: nearest first
    last4: str | None = None
    order: str | None = None


@dataclass(frozen=True)
class Match:
    """One transaction found, with what tells it apart from the others."""

    key: ReceiptKey | None  # a receipt's natural key
    row: RowId | None  # or a settlement row no receipt claims
    mid: str
    tid: str
    trc: str
    rrn: str
    fen: int
    lt: int | None
    pan: str
    state: str  # the receipt's state, or "acquirer row" for a row alone

    def rank(self, around: int | None) -> tuple[int, int]:
        if self.lt is None:
            return (2**62, 0)
        return (abs(self.lt - around) if around is not None else 0, -self.lt)


def day_range(day: date) -> tuple[int, int]:
    """A Beijing calendar day as unix seconds, inclusive."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp())
    return start, start + 86_399


_R = "SELECT r.mid, r.tid, r.bat, r.trc, r.rrn, r.amt, r.lt, r.pan, r.st FROM receipts r WHERE "
_D = (
    "SELECT d.file_id, d.line, d.mid, d.tid, d.trc, d.rrn, d.amt, d.txn_time, d.pan, d.bat"
    " FROM settle_detail d WHERE "
)
# A row is a receipt's when the receipt's RRN names it, or (without an RRN match) when the
# natural key and amount do: classify matches them the same way.
_UNCLAIMED = (
    " AND NOT EXISTS (SELECT 1 FROM receipts c WHERE c.rrn = d.rrn AND c.mid = d.mid)"
    " AND NOT EXISTS (SELECT 1 FROM receipts c WHERE c.mid = d.mid AND c.tid = d.tid"
    " AND c.bat = d.bat AND c.trc = d.trc AND c.amt = d.amt)"
)


def search(store: Store, q: Query) -> list[Match]:
    """Matches best first, at most MAX_MATCHES + 1 (one more says there are more)."""
    found: dict[object, Match] = {}
    with store.snapshot() as tx:
        if q.order is not None:
            _by_order(tx, q.order, found)
        else:
            where, params = _where(q)
            rsql = _R + " AND ".join(w.replace("@", "r.") for w in where)
            for mid, tid, bat, trc, rrn, amt, lt, pan, st in tx.execute(rsql, params):
                key = (str(mid), str(tid), str(bat), str(trc))
                found[key] = Match(key, None, key[0], key[1], key[3], str(rrn or ""), int(amt),
                                   _int(lt), str(pan or ""), str(st))  # fmt: skip
            dwhere = [w.replace("@lt", "@txn_time").replace("@", "d.") for w in where]
            dsql = _D + " AND ".join(dwhere) + _UNCLAIMED
            for row in tx.execute(dsql, params):
                found[(int(row[0]), int(row[1]))] = _row_match(row)
    matches = list(found.values())
    if q.last4 is not None:
        matches = [m for m in matches if m.pan.endswith(q.last4)]
    matches.sort(key=lambda m: m.rank(q.around))
    return matches[: MAX_MATCHES + 1]


def _where(q: Query) -> tuple[list[str], list[object]]:
    """Conditions on `@` columns (receipt or row), most selective first."""
    where: list[str] = []
    params: list[object] = []

    def add(sql: str, *values: object) -> None:
        where.append(sql)
        params.extend(values)

    if q.rrn is not None:
        add("@rrn = ?", q.rrn)
    if q.tid is not None:
        add("@tid = ?", q.tid)
    if q.trace is not None:
        add("@trc = ?", q.trace)
    if q.mid is not None:
        add("@mid = ?", q.mid)
    if q.fen is not None:
        add("@amt = ?", q.fen)
    if q.lo is not None and q.hi is not None:
        add("@lt BETWEEN ? AND ?", q.lo, q.hi)
    if not where:
        raise ValueError("an empty query would read the whole store")
    return where, params


def _row_match(row: tuple[object, ...] | list[object]) -> Match:
    file_id, line, mid, tid, trc, rrn, amt, txn_time, pan, _bat = row
    return Match(None, (int(str(file_id)), int(str(line))), str(mid), str(tid), str(trc),
                 str(rrn or ""), int(str(amt)), _int(txn_time), str(pan or ""),
                 "acquirer row")  # fmt: skip


def _by_order(tx: Transaction, order: str, found: dict[object, Match]) -> None:
    """A QR sale's order number: on its receipt (`ord`, DESIGN §2.3: the terminal's POS sends
    it) and on the acquirer's row; a row a receipt claims is the receipt's."""
    for c in tx.execute(_R + "r.ord = ?", (order,)):
        _add_receipt(found, c)
    for row in tx.execute(_D + "d.ord = ? AND d.ord <> ''", (order,)):  # its partial index
        file_id, line, mid, tid, trc, rrn = row[:6]
        claimed = tx.execute(
            _R + "r.rrn = ? AND r.mid = ?", (rrn, mid)
        ) if rrn else []  # fmt: skip
        if not claimed:
            claimed = tx.execute(
                _R + "r.mid = ? AND r.tid = ? AND r.bat = ? AND r.trc = ? AND r.amt = ?",
                (mid, tid, row[9], trc, row[6]),
            )
        if claimed:
            _add_receipt(found, claimed[0])
        else:
            found[(int(file_id), int(line))] = _row_match(row)


def _add_receipt(found: dict[object, Match], c: tuple[object, ...] | list[object]) -> None:
    key = (str(c[0]), str(c[1]), str(c[2]), str(c[3]))
    found[key] = Match(key, None, key[0], key[1], key[3], str(c[4] or ""), int(str(c[5])),
                       _int(c[6]), str(c[7] or ""), str(c[8]))  # fmt: skip


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def window(around: int, hours: float) -> tuple[int, int]:
    span = int(timedelta(hours=hours).total_seconds())
    return around - span, around + span
