"""Everything correlation reads, in one read transaction, shaped for lookups in memory.

Correlation needs every receipt, detail row and payout at once (acquirer_side looks across
merchants), so it reads the tables once, in plain SELECTs, and indexes them in dicts; no
per-transaction query. Device timelines keep only what explains money: outages (link_down /
link_up with stage), signal readings, declared losses, and when each device was last heard.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from daozhang.store import Store, Transaction


class Receipt(NamedTuple):
    mid: str
    tid: str
    bat: str
    trc: str
    dev: str
    typ: str
    ch: str
    amt: int
    pan: str | None
    ck: str | None
    lt: int | None
    st: str
    rc: str | None
    rrn: str | None
    rv: str | None
    sd: str | None
    sm: str | None
    otrc: str | None
    orrn: str | None
    t: int  # device time of the latest state's record (placed when the clock was unknown)
    received_at: float


class Detail(NamedTuple):
    file_id: int
    line: int
    settle_date: str
    mid: str
    tid: str
    txn_time: int
    typ: str
    ch: str
    bat: str
    trc: str
    rrn: str
    orrn: str
    pan: str
    ck: str
    amt: int
    fee: int
    settle_amt: int
    direction: str
    settle_type: str
    check_flag: str
    payout_id: str


class Payout(NamedTuple):
    payout_id: str
    mid: str
    settle_type: str
    settle_date: str
    plan_fen: int
    fee_fen: int
    suspend_fen: int
    retained_fen: int
    real_fen: int
    state: str
    fail_reason: str
    bank_account: str


class Merchant(NamedTuple):
    mid: str
    acquirer: str
    fee_rate: str
    debit_cap_fen: int | None
    d0_surcharge: str
    settle_type: str
    status: str


@dataclass
class Outage:
    start: int
    end: int | None  # None: still down when last heard
    stage: str
    why: str


@dataclass
class Timeline:
    outages: list[Outage] = field(default_factory=list)
    signal_t: list[int] = field(default_factory=list)
    signal: list[dict[str, Any]] = field(default_factory=list)
    lost: list[tuple[int, int, int, int]] = field(default_factory=list)  # from,to,t_lo,t_hi
    last_seen: float | None = None
    last_jrec: int | None = None

    def outages_near(self, t: int, before: int = 900, after: int = 900) -> list[Outage]:
        return [
            o
            for o in self.outages
            if o.start <= t + after and (o.end is None or o.end >= t - before)
        ]

    def signal_at(self, t: int) -> dict[str, Any] | None:
        i = bisect.bisect_right(self.signal_t, t)
        return self.signal[i - 1] if i else None


@dataclass
class Data:
    receipts: list[Receipt]
    detail: list[Detail]
    payouts: dict[str, Payout]
    merchants: dict[str, Merchant]
    detail_files: set[tuple[str, str]]  # (acquirer or '', settle date) imported
    payout_files: set[tuple[str, str]]
    timelines: dict[str, Timeline]
    terminal_dev: dict[tuple[str, str], str]

    def file_imported(self, kind: str, acquirer: str, day: date) -> bool:
        files = self.detail_files if kind == "detail" else self.payout_files
        text = day.isoformat()
        return (acquirer, text) in files or ("", text) in files


_RECEIPT_SQL = (
    "SELECT mid, tid, bat, trc, dev, typ, ch, amt, pan, ck, lt, st, rc, rrn, rv, sd, sm,"
    " otrc, orrn, COALESCE(placed_t, t), received_at FROM receipts"
)


def load(store: Store, merchant: str | None = None, device: str | None = None) -> Data:
    where, params = _filter(merchant, device)
    with store.transaction() as tx:
        receipts = [Receipt(*r) for r in tx.execute(_RECEIPT_SQL + where, params)]
        dwhere, dparams = _filter(merchant, None)
        detail = [
            Detail(*r)
            for r in tx.execute(
                "SELECT file_id, line, settle_date, mid, tid, txn_time, typ, ch, bat, trc, rrn,"
                " orrn, pan, ck, amt, fee, settle_amt, direction, settle_type, check_flag,"
                " payout_id FROM settle_detail" + dwhere,
                dparams,
            )
        ]
        if device is not None:
            terminals = {(r.mid, r.tid) for r in receipts}
            terminals |= {
                (str(a), str(b))
                for a, b in tx.execute(
                    "SELECT mid, tid FROM device_terminals WHERE dev = ?", (device,)
                )
            }
            detail = [d for d in detail if (d.mid, d.tid) in terminals]
        payouts: dict[str, Payout] = {}
        # Later files update earlier ones (in_progress, then paid).
        for r in tx.execute(
            "SELECT payout_id, mid, settle_type, settle_date, plan_fen, fee_fen, suspend_fen,"
            " retained_fen, real_fen, state, fail_reason, bank_account FROM payouts"
            + dwhere
            + " ORDER BY file_id, line",
            dparams,
        ):
            payouts[r[0]] = Payout(*r)
        merchants = {
            r[0]: Merchant(*r)
            for r in tx.execute(
                "SELECT mid, acquirer, fee_rate, debit_cap_fen, d0_surcharge, settle_type, status"
                " FROM merchants"
            )
        }
        detail_files, payout_files = _files(tx)
        terminal_dev = _terminals(tx)
        timelines = _timelines(tx, device)
    return Data(
        receipts, detail, payouts, merchants, detail_files, payout_files, timelines, terminal_dev
    )


def _filter(merchant: str | None, device: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses, params = [], []
    if merchant is not None:
        clauses.append("mid = ?")
        params.append(merchant)
    if device is not None:
        clauses.append("dev = ?")
        params.append(device)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _files(tx: Transaction) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    detail: set[tuple[str, str]] = set()
    payout: set[tuple[str, str]] = set()
    for kind, acquirer, lo, hi in tx.execute(
        "SELECT kind, acquirer, date_from, date_to FROM settle_files WHERE kind <> 'merchants'"
    ):
        if lo is None or hi is None:
            continue
        target = detail if kind == "detail" else payout
        day = date.fromisoformat(lo)
        while day.isoformat() <= hi:
            target.add((acquirer, day.isoformat()))
            day = date.fromordinal(day.toordinal() + 1)
    return detail, payout


def _terminals(tx: Transaction) -> dict[tuple[str, str], str]:
    """Which device serves a terminal: the one that reported it last."""
    out: dict[tuple[str, str], str] = {}
    for dev, mid, tid in tx.execute(
        "SELECT dev, mid, tid FROM device_terminals ORDER BY last_seen"
    ):
        out[(mid, tid)] = dev
    return out


def _timelines(tx: Transaction, device: str | None) -> dict[str, Timeline]:
    lines: dict[str, Timeline] = defaultdict(Timeline)
    where = " AND dev = ?" if device else ""
    params: tuple[Any, ...] = (device,) if device else ()
    open_down: dict[str, Outage] = {}
    for dev, t, ev, body_json in tx.execute(
        "SELECT dev, COALESCE(placed_t, t), ev, body_json FROM diag_events"
        " WHERE ev IN ('link_down', 'link_up', 'signal')" + where + " ORDER BY dev, epoch, seq",
        params,
    ):
        line = lines[dev]
        if ev == "link_down":
            body = json.loads(body_json)
            o = Outage(int(t), None, str(body.get("stage", "?")), str(body.get("why", "")))
            line.outages.append(o)
            earlier = open_down.get(dev)
            if earlier is not None and earlier.end is None:
                earlier.end = int(t)  # down again before an up: the first one ended by now
            open_down[dev] = o
        elif ev == "link_up":
            o2 = open_down.pop(dev, None)
            if o2 is not None:
                o2.end = int(t)
        else:
            line.signal_t.append(int(t))
            line.signal.append(json.loads(body_json))
    for dev, epoch, lo, hi in tx.execute(
        "SELECT dev, epoch, seq_from, seq_to FROM declared_gaps WHERE 1 = 1" + where, params
    ):
        # The lost records' times lie between their stored neighbours'.
        before = tx.execute(
            "SELECT MAX(COALESCE(placed_t, t)) FROM records WHERE dev = ? AND epoch = ?"
            " AND seq < ?",
            (dev, epoch, lo),
        )[0][0]
        after = tx.execute(
            "SELECT MIN(COALESCE(placed_t, t)) FROM records WHERE dev = ? AND epoch = ?"
            " AND seq > ?",
            (dev, epoch, hi),
        )[0][0]
        lines[dev].lost.append((int(lo), int(hi), int(before or 0), int(after or 2**62)))
    for dev, seen in tx.execute("SELECT dev, last_seen FROM devices WHERE 1 = 1" + where, params):
        lines[dev].last_seen = float(seen) if seen is not None else None
    for dev, seen, jrec in tx.execute(
        "SELECT h.dev, h.received_at, h.jrec FROM heartbeats h JOIN (SELECT dev,"
        " MAX(received_at) AS m FROM heartbeats GROUP BY dev) x ON x.dev = h.dev"
        " AND x.m = h.received_at" + where.replace("dev", "h.dev"),
        params,
    ):
        line = lines[dev]
        if line.last_seen is None or seen > line.last_seen:
            line.last_seen = float(seen)
        line.last_jrec = int(jrec) if jrec is not None else None
    return dict(lines)
