"""Whether "many healthy merchants are unpaid on one acquirer-day" (`acquirer_side`) holds,
read for one acquirer and expected date instead of the whole store (`daozhang lookup`).

`acquirer_day` finds a superset of the transactions that may wait on the acquirer that day
(due then by the policy or the terminal's DE15 date, reaching the money path, no row or no
payout, not voided) by set queries over that acquirer's sales of the days due then, classifies
them with the rules themselves (`members`), and counts the merchants healthy around a sale
(`classify.healthy_at`). The count is the whole-store run's (tests/lookup).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from daozhang.correlate.classify import Context, Finding, _detail_only, healthy_at
from daozhang.correlate.data import (
    _D_COLS,
    _MATCHED_SQL,
    _N_R,
    Data,
    Detail,
    Outage,
    Receipt,
    ReceiptKey,
    RowId,
    Timeline,
    key_rows_sql,
    latest_device,
    payouts_named,
    receipt_key,
)
from daozhang.correlate.finding import day_end
from daozhang.correlate.terminal import Index, receipt
from daozhang.store import Transaction
from daozhang.units import BEIJING

# Undoing receipts and states, as terminal.Index reads them.
_UNDOING_OK = "('approved', 'offline_sent', 'offline_pending')"
# A sale's expected date lies at most this many days after it (T1 over the longest holiday).
_MAX_LAG_DAYS = 16


def members(data: Data, ctx: Context) -> list[Finding]:
    """The transactions of `data` that wait on the acquirer (due, file imported, no row or no
    payout): classify's loop up to `_acquirer_side`, which the whole-store run decides later."""
    idx = Index(data)
    out = []
    for r, joined in zip(data.receipts, data.matched, strict=True):
        d = joined
        if d is None:
            d = idx.match(r)
            if d is not None:
                idx.used.add(id(d))
        f = receipt(r, d, data, idx, ctx)
        if f.awaiting_acquirer:
            out.append(f)
    for d in data.detail:
        if id(d) in idx.used or d.typ == "preauth":
            continue
        f = _detail_only(d, data, ctx)
        if f.awaiting_acquirer:
            out.append(f)
    return out


def _segments(ctx: Context, acquirer: str, day: date) -> list[tuple[int, int]]:
    """Sale times (unix s, half-open) whose expected date may be `day` under any settle mode:
    the policy's answer only changes at midnight, the day cut and the D0 window's ends."""
    policy = ctx.policies.for_acquirer(acquirer)
    marks = sorted({0, *(t.hour * 3600 + t.minute * 60
                        for t in (policy.day_cut, policy.d0_start, policy.d0_end))})  # fmt: skip
    out: list[tuple[int, int]] = []
    first = day - timedelta(days=_MAX_LAG_DAYS)
    for n in range(_MAX_LAG_DAYS + 2):
        local = first + timedelta(days=n)
        midnight = int(datetime(local.year, local.month, local.day, tzinfo=BEIJING).timestamp())
        ends = [*marks[1:], 86_400]
        for lo, hi in zip(marks, ends, strict=True):
            if lo == hi:
                continue
            if any(ctx.due(midnight + lo, sm, acquirer, "").expected == day
                   for sm in ("T1", "D1", "D0")):  # fmt: skip
                start, end = midnight + lo, midnight + hi
                if out and out[-1][1] == start:
                    out[-1] = (out[-1][0], end)
                else:
                    out.append((start, end))
    return out


def acquirer_day(
    tx: Transaction, ctx: Context, acquirer: str, day: date | None, asked: Data
) -> set[str]:
    """The merchants of `acquirer` with a transaction expected on `day` that waits on the
    acquirer while their terminal was healthy around the sale: `_acquirer_side`'s count, read
    by set queries over that acquirer-day instead of the whole store. `asked` is the scoped
    load of the lookup (its merchants, files and notices are the store's, read once)."""
    if day is None:
        return set()
    segments = _segments(ctx, acquirer, day)
    if not segments:
        return set()
    if tx.dialect == "postgresql":
        # These reads touch a few thousand rows, but PostgreSQL's estimate of the joins set
        # off its JIT compiler: 0.5 s of compiling per lookup at 10M receipts.
        tx.execute("SET LOCAL jit = off")
    wide_lo = segments[0][0]
    wide_hi = segments[-1][1]
    mmdd = sorted({(day - timedelta(days=n)).strftime("%m%d") for n in range(_MAX_LAG_DAYS + 1)})
    if acquirer:
        m_join, m_cond = " JOIN merchants m ON m.mid = r.mid", "m.acquirer = ?"
        m_params: list[Any] = [acquirer]
    else:
        m_join, m_cond, m_params = " LEFT JOIN merchants m ON m.mid = r.mid", "m.mid IS NULL", []
    when = " OR ".join("(r.lt >= ? AND r.lt < ?)" for _ in segments)
    when_params = [x for seg in segments for x in seg]
    # A superset of the members: due around `day` (by lt, by the terminal's DE15 date, or by
    # the record time when lt is missing), reaching the money path, no row or no payout, and
    # not voided. Each candidate is then classified exactly by the rules themselves.
    common = (
        f"{m_cond} AND r.typ IN ('sale', 'preauth_done')"
        " AND (r.st IN ('approved', 'offline_sent', 'offline_pending') OR (r.st IN ('reversed',"
        " 'reversal_failed', 'no_response', 'reversal_pending') AND d.check_flag IN ('Y', 'L')))"
        " AND (d.rrn IS NULL OR (d.check_flag <> 'B'"
        " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.payout_id = d.payout_id)))"
        " AND NOT (r.typ = 'sale' AND EXISTS (SELECT 1 FROM receipts v WHERE v.mid = r.mid"
        f" AND v.tid = r.tid AND v.otrc = r.trc AND v.typ = 'void' AND v.st IN {_UNDOING_OK}))"
        " AND NOT (r.typ = 'sale' AND r.rrn IS NOT NULL AND EXISTS (SELECT 1 FROM receipts v"
        f" WHERE v.orrn = r.rrn AND v.mid = r.mid AND v.typ = 'void' AND v.st IN {_UNDOING_OK}))"
    )
    iso = day.isoformat()
    # Payouts named by rows settled on `day` that no payout file holds: usually none, so the
    # rows settled later than their sale was due are read only when there are such payouts.
    missing = [
        str(pid)
        for (pid,) in tx.execute(
            f"SELECT DISTINCT d.payout_id FROM settle_detail d"
            f"{_indexed_by(tx, 'settle_detail_unpaid_day')} WHERE d.settle_date = ?"
            " AND d.paid = 0"
            " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.payout_id = d.payout_id)",
            (iso,),
        )
    ]
    marks = ", ".join("?" * len(missing))
    # Each a separate query, so that each is one index range: sold in the window (by the
    # policy, or by the terminal's DE15 date); placed by record time (no lt); or with a row,
    # or a fallback row, settled on `day` itself (later than the sale was due).
    # `waits = 1`: only the receipts that may still wait for their payout (settle/waiting.py
    # keeps it), read through their partial indexes, not every sale of the days due.
    whos: list[tuple[str, list[Any], str]] = [
        (
            f"r.waits = 1 AND r.lt >= ? AND r.lt < ?"
            f" AND (({when}) OR r.sd IN ({', '.join('?' * len(mmdd))}))",
            [wide_lo - 86_400, wide_hi, *when_params, *mmdd],
            _indexed_by(tx, "receipts_waiting"),
        ),
        (
            "r.waits = 1 AND r.lt IS NULL AND r.t >= ? AND r.t < ?",
            [wide_lo, wide_hi],
            _indexed_by(tx, "receipts_waiting_untimed"),
        ),
    ]
    if missing:
        whos += [
            (
                "(r.rrn, r.mid) IN (SELECT d2.rrn, d2.mid FROM settle_detail d2"
                f" WHERE d2.settle_date = ? AND d2.payout_id IN ({marks}))",
                [iso, *missing],
                "",
            ),
            (
                "d.rrn IS NULL AND (r.mid, r.tid, r.bat, r.trc) IN (SELECT f2.mid, f2.tid,"
                f" f2.bat, f2.trc FROM settle_detail f2 WHERE f2.settle_date = ?"
                f" AND f2.payout_id IN ({marks}))",
                [iso, *missing],
                "",
            ),
        ]
    joins = f"{m_join} LEFT JOIN settle_detail d ON d.rrn = r.rrn AND d.mid = r.mid"
    receipts: list[Receipt] = []
    matched: list[Detail | None] = []
    seen: set[ReceiptKey] = set()
    sql = _MATCHED_SQL.split(" FROM ", 1)[0]
    for who, who_params, by in whos:
        cond, params = f"{common} AND {who}", [*m_params, *who_params]
        for row in tx.execute(f"{sql} FROM receipts r{by}{joins} WHERE {cond}", params):
            r = Receipt._make(row[:_N_R])
            if receipt_key(r) in seen:
                continue
            seen.add(receipt_key(r))
            receipts.append(r)
            matched.append(None if row[_N_R] is None else Detail._make(row[_N_R:]))
    fallback = _fallback(tx, [r for r, d in zip(receipts, matched, strict=True) if d is None])
    # Rows no receipt claims: settled on `day` under a missing payout, or sold in the window
    # (due on `day`) and settled earlier under a missing payout.
    d_join = m_join.replace("r.mid", "d.mid")
    unclaimed = (
        f"SELECT {_D_COLS} FROM settle_detail d{{by}}{d_join} WHERE {m_cond}"
        " AND d.typ IN ('sale', 'preauth_done') AND d.check_flag <> 'B'"
        " AND NOT EXISTS (SELECT 1 FROM payouts p WHERE p.payout_id = d.payout_id)"
        " AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.rrn = d.rrn AND r.mid = d.mid) AND "
    )
    d_when = when.replace("r.lt", "d.txn_time")
    only = [
        Detail._make(row)
        for row in tx.execute(
            unclaimed.format(by=_indexed_by(tx, "settle_detail_unpaid"))
            + f"d.paid = 0 AND d.txn_time >= ? AND d.txn_time < ? AND ({d_when})"
            " AND d.settle_date < ?",
            (*m_params, wide_lo - 86_400, wide_hi, *when_params, iso),
        )
    ]
    if missing:
        only += [
            Detail._make(row)
            for row in tx.execute(
                unclaimed.format(by="") + f"d.settle_date = ? AND d.payout_id IN ({marks})",
                (*m_params, iso, *missing),
            )
        ]
    detail = fallback + [d for d in only if d not in fallback]
    payouts = payouts_named(tx, {d.payout_id for d in fallback if d.payout_id})
    terminal_dev = {
        (mid, tid): dev
        for mid, tid in sorted({(d.mid, d.tid) for d in only})
        if (dev := latest_device(tx, mid, tid)) is not None
    }
    data = Data(receipts, matched, detail, payouts, asked.merchants, asked.detail_files,
                asked.payout_files, {}, terminal_dev, notices=asked.notices)  # fmt: skip
    # As `_acquirer_side` judges them: an announced window over the day explains its gaps.
    end = day_end(day)
    waiting = [
        f
        for f in members(data, ctx)
        if (f.acquirer, f.expected_date) == (acquirer, day)
        and data.window(acquirer, f.lt or end - 86_399, end) is None
    ]
    # Outages only, and only until each merchant has one healthy transaction.
    healthy: set[str] = set()
    by_dev: dict[str, list[Finding]] = {}
    for f in waiting:
        if f.lt is None or not f.dev:
            healthy.add(f.mid)
        else:
            by_dev.setdefault(f.dev, []).append(f)
    for dev, fs in sorted(by_dev.items()):
        if all(f.mid in healthy for f in fs):
            continue
        line = Timeline(outages=_outages(tx, dev, ctx.as_of))
        for f in fs:
            if healthy_at(f, line):
                healthy.add(f.mid)
    return healthy


def _indexed_by(tx: Transaction, index: str) -> str:
    """Only the rows that may still wait, through their partial index. SQLite's planner, which
    has no statistics for it until an ANALYZE, ranged every merchant of the acquirer instead
    (4.5 s at 10M receipts); PostgreSQL's chooses it by itself and has no INDEXED BY."""
    return f" INDEXED BY {index}" if tx.dialect == "sqlite" else ""


def _fallback(tx: Transaction, receipts: list[Receipt]) -> list[Detail]:
    """Unclaimed rows of these receipts' natural keys (receipts without an RRN match), in the
    receipts' order. SQLite scans the table for a row-value IN over VALUES, so it probes the
    trace index once a receipt (in-process, cheap; `key_rows_sql`); PostgreSQL joins the keys
    as arrays in one statement: a round trip a probe was 0.26 s of a 0.5 s lookup at 10M."""
    rows: list[Any] = []
    if tx.dialect == "postgresql":
        if receipts:
            mids, tids, bats, trcs = (
                list(col) for col in zip(*map(receipt_key, receipts), strict=True)
            )
            rows = tx.execute(
                f"SELECT {_D_COLS} FROM settle_detail d JOIN unnest(?::text[], ?::text[],"
                " ?::text[], ?::text[]) WITH ORDINALITY AS k(mid, tid, bat, trc, n)"
                " ON d.mid = k.mid AND d.tid = k.tid AND d.bat = k.bat AND d.trc = k.trc"
                " WHERE NOT EXISTS (SELECT 1 FROM receipts r2 WHERE r2.rrn = d.rrn"
                " AND r2.mid = d.mid) ORDER BY k.n, d.file_id, d.line",
                (mids, tids, bats, trcs),
            )
    else:
        for r in receipts:
            rows += tx.execute(key_rows_sql(tx), receipt_key(r))
    out: list[Detail] = []
    seen: set[RowId] = set()
    for row in rows:
        d = Detail._make(row)
        if (d.file_id, d.line) not in seen:
            seen.add((d.file_id, d.line))
            out.append(d)
    return out


def _outages(tx: Transaction, dev: str, as_of: int) -> list[Outage]:
    """A device's outages as `_timelines` builds them, without reading their bodies."""
    out: list[Outage] = []
    open_down: Outage | None = None
    for t, ev in tx.execute(
        "SELECT COALESCE(placed_t, t), ev FROM diag_events WHERE ev IN ('link_down', 'link_up')"
        " AND dev = ? AND COALESCE(placed_t, t) > 0 AND COALESCE(placed_t, t) <= ?"
        " ORDER BY epoch, seq",
        (dev, as_of),
    ):
        if ev == "link_down":
            o = Outage(int(t), None, "", "")
            out.append(o)
            if open_down is not None and open_down.end is None:
                open_down.end = int(t)
            open_down = o
        elif open_down is not None:
            open_down.end = int(t)
            open_down = None
    return out
