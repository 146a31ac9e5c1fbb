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

from daozhang.collector.quarantine_read import Refusal, refused_receipts
from daozhang.store import Store, Transaction


class Receipt(NamedTuple):
    mid: str
    tid: str
    bat: str
    trc: str
    dev: str
    typ: str
    amt: int
    pan: str | None
    ck: str | None
    lt: int | None
    st: str
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
    matched: list[Detail | None]  # the detail row matched to receipts[i] by RRN, if any
    detail: list[Detail]  # detail rows no receipt matched by RRN
    payouts: dict[str, Payout]
    merchants: dict[str, Merchant]
    detail_files: set[tuple[str, str]]  # (acquirer or '', settle date) imported
    payout_files: set[tuple[str, str]]
    timelines: dict[str, Timeline]
    terminal_dev: dict[tuple[str, str], str]
    # Receipts the collector refused (quarantine), by (mid, rrn): a detail row without a
    # receipt may be one of them, which `no_receipt` ("never reported") would misstate.
    refused: dict[tuple[str, str], Refusal] = field(default_factory=dict)

    def file_imported(self, kind: str, acquirer: str, day: date) -> bool:
        files = self.detail_files if kind == "detail" else self.payout_files
        text = day.isoformat()
        return (acquirer, text) in files or ("", text) in files

    def all_detail(self) -> list[Detail]:
        return [d for d in self.matched if d is not None] + self.detail


_R_COLS = (
    "r.mid, r.tid, r.bat, r.trc, r.dev, r.typ, r.amt, r.pan, r.ck, r.lt, r.st,"
    " r.rrn, r.rv, r.sd, r.sm, r.otrc, r.orrn, COALESCE(r.placed_t, r.t),"
    " r.received_at"
)
_D_COLS = (
    "d.file_id, d.line, d.settle_date, d.mid, d.tid, d.txn_time, d.typ, d.bat,"
    " d.trc, d.rrn, d.orrn, d.pan, d.ck, d.amt, d.fee, d.settle_amt, d.direction,"
    " d.settle_type, d.check_flag, d.payout_id"
)
_N_R = 19  # receipt columns before the detail row's
# The RRN match is a join the database does best; the rare fallbacks (no RRN, natural key and
# amount) are done in memory on the rows this join leaves over.
_MATCHED_SQL = (
    f"SELECT {_R_COLS}, {_D_COLS} FROM receipts r"
    " LEFT JOIN settle_detail d ON d.rrn = r.rrn AND d.mid = r.mid"
)
_UNMATCHED_SQL = (
    f"SELECT {_D_COLS} FROM settle_detail d WHERE NOT EXISTS"
    " (SELECT 1 FROM receipts r WHERE r.rrn = d.rrn AND r.mid = d.mid)"
)


def load(store: Store, merchant: str | None = None, device: str | None = None) -> Data:
    receipts: list[Receipt] = []
    matched: list[Detail | None] = []
    last: tuple[Any, ...] = ()
    make_r, make_d = Receipt._make, Detail._make
    with store.transaction() as tx:
        where, params = _filter(merchant, device, "r.")
        for row in tx.execute(_MATCHED_SQL + where, params):
            key = row[:4]
            if key == last:
                # Two detail rows with this RRN: the first match wins. Both engines emit all
                # matches of one outer row together (nested loop, hash or merge join).
                continue
            last = key
            r = make_r(row[:_N_R])
            receipts.append(r)
            matched.append(None if row[_N_R] is None else make_d(row[_N_R:]))
        dwhere, dparams = _filter(merchant, None, "d.")
        detail = list(
            map(make_d, tx.execute(_UNMATCHED_SQL + dwhere.replace(" WHERE", " AND"), dparams))
        )
        if device is not None:
            terminals = {(r.mid, r.tid) for r in receipts}
            terminals |= {
                (str(a), str(b))
                for a, b in tx.execute(
                    "SELECT mid, tid FROM device_terminals WHERE dev = ?", (device,)
                )
            }
            detail = [d for d in detail if (d.mid, d.tid) in terminals]
        pwhere, pparams = _filter(merchant, None, "")
        payouts: dict[str, Payout] = {}
        # Later files update earlier ones (in_progress, then paid).
        for r2 in tx.execute(
            "SELECT payout_id, mid, settle_type, settle_date, plan_fen, fee_fen, suspend_fen,"
            " retained_fen, real_fen, state, fail_reason, bank_account FROM payouts"
            + pwhere
            + " ORDER BY file_id, line",
            pparams,
        ):
            payouts[r2[0]] = Payout(*r2)
        merchants = {
            r3[0]: Merchant(*r3)
            for r3 in tx.execute(
                "SELECT mid, acquirer, fee_rate, debit_cap_fen, d0_surcharge, settle_type, status"
                " FROM merchants"
            )
        }
        detail_files, payout_files = _files(tx)
        terminal_dev = _terminals(tx)
        timelines = _timelines(tx, device)
    return Data(
        receipts,
        matched,
        detail,
        payouts,
        merchants,
        detail_files,
        payout_files,
        timelines,
        terminal_dev,
        _refused(store, merchant),
    )


def _refused(store: Store, merchant: str | None) -> dict[tuple[str, str], Refusal]:
    found: dict[tuple[str, str], Refusal] = {}
    for refusal, body in refused_receipts(store):
        mid, rrn = body.get("mid"), body.get("rrn")
        if isinstance(mid, str) and isinstance(rrn, str) and merchant in (None, mid):
            found.setdefault((mid, rrn), refusal)
    return found


def _filter(merchant: str | None, device: str | None, prefix: str) -> tuple[str, tuple[Any, ...]]:
    clauses, params = [], []
    if merchant is not None:
        clauses.append(f"{prefix}mid = ?")
        params.append(merchant)
    if device is not None:
        clauses.append(f"{prefix}dev = ?")
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
        " WHERE ev IN ('link_down', 'link_up', 'signal') AND COALESCE(placed_t, t) > 0"
        + where
        + " ORDER BY dev, epoch, seq",
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
            " AND seq < ? AND COALESCE(placed_t, t) > 0",
            (dev, epoch, lo),
        )[0][0]
        after = tx.execute(
            "SELECT MIN(COALESCE(placed_t, t)) FROM records WHERE dev = ? AND epoch = ?"
            " AND seq > ? AND COALESCE(placed_t, t) > 0",
            (dev, epoch, hi),
        )[0][0]
        lines[dev].lost.append((int(lo), int(hi), int(before or 0), int(after or 2**62)))
    for dev, seen in tx.execute("SELECT dev, last_seen FROM devices WHERE 1 = 1" + where, params):
        lines[dev].last_seen = float(seen) if seen is not None else None
    for dev, seen, jrec in tx.execute(
        # Each device's last stored heartbeat, one (dev, id) probe each, as fleet status reads
        # it (a GROUP BY over all heartbeats walked the whole index).
        "SELECT d.dev, h.received_at, h.jrec FROM devices d JOIN heartbeats h ON h.id ="
        " (SELECT MAX(id) FROM heartbeats WHERE dev = d.dev) WHERE 1 = 1"
        + where.replace("dev", "d.dev"),
        params,
    ):
        line = lines[dev]
        if line.last_seen is None or seen > line.last_seen:
            line.last_seen = float(seen)
        line.last_jrec = int(jrec) if jrec is not None else None
    return dict(lines)
