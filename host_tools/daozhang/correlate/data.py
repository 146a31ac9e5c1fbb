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
from daozhang.settle.notices import Notice
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
    ord: str | None = None  # the merchant's order number (QR and wallet sales; DESIGN §2.3)
    xid: str | None = None  # the channel's transaction id


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
    ord: str = ""
    xid: str = ""


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
    # The merchant's settlement settings (DESIGN §2.3 `settlement_delay`): payouts delayed by
    # this many days; a reserve of this rate of each payout, released on this date.
    delay_days: int = 0
    reserve_rate: str = "0"
    reserve_release: str = ""
    terminals: tuple[str, ...] = ()  # terminal numbers registered for it; () = not given


@dataclass
class Outage:
    start: int
    end: int | None  # None: still down when last heard
    stage: str
    why: str

    def covers(self, t: int) -> bool:
        return self.start <= t and (self.end is None or t <= self.end)


class Beat(NamedTuple):
    """A heartbeat on the device's timeline: what the terminal said of itself at `t`."""

    t: int  # event time: the device's clock, or placed from its uptime (`placed`)
    placed: bool
    jrec: int | None  # records not acked yet
    recon: int | None  # reconnects since the previous heartbeat
    link: str | None
    fw: str | None = None  # the firmware version it ran
    boot: int | None = None  # its boot counter, and why that boot happened
    cause: str | None = None


ReceiptKey = tuple[str, str, str, str]  # a receipt's natural key: mid, tid, bat, trc
RowId = tuple[int, int]  # a settlement row: settle_detail file_id, line


def receipt_key(r: Receipt) -> ReceiptKey:
    return (r.mid, r.tid, r.bat, r.trc)


class Reboot(NamedTuple):
    """A restart of the terminal's agent in event time: from its `boot` diagnostic, or from a
    heartbeat whose boot counter moved on (then `t` is that heartbeat's, an upper bound)."""

    t: int
    cause: str  # power_on watchdog brownout soft crash unknown
    exact: bool  # the boot record's own time, not the next heartbeat's


class FirmwareChange(NamedTuple):
    after: int  # the last heartbeat on the old version
    t: int  # the first heartbeat on the new one
    old: str
    new: str


@dataclass
class Timeline:
    """One device's facts in event time (the terminal's clock), up to the run's as-of time.

    Nothing here is the host's receive time: a day whose records and heartbeats reached the
    host hours or weeks late gives the same timeline, and so the same verdicts."""

    outages: list[Outage] = field(default_factory=list)
    signal_t: list[int] = field(default_factory=list)
    signal: list[dict[str, Any]] = field(default_factory=list)
    lost: list[tuple[int, int, int, int]] = field(default_factory=list)  # from,to,t_lo,t_hi
    beats: list[Beat] = field(default_factory=list)  # in event time order
    boots: list[Reboot] = field(default_factory=list)  # diag `boot` records, in event time

    def reboots_near(self, t: int, before: int, after: int) -> list[Reboot]:
        """Restarts from `before` s before `t` to `after` s after it: the boot records, and
        the heartbeats whose boot counter moved on when no boot record explains the move."""
        lo, hi = t - before, t + after
        i = bisect.bisect_left(self.boots, lo, key=lambda b: b.t)
        found = []
        while i < len(self.boots) and self.boots[i].t <= hi:
            found.append(self.boots[i])
            i += 1
        for prev, beat in self._pairs(lo, hi):
            if (
                prev.boot is not None
                and beat.boot != prev.boot
                and beat.t >= lo
                # The restart lies between the two heartbeats, and no boot record says when.
                and not any(prev.t <= b.t <= beat.t for b in self.boots)
            ):
                found.append(Reboot(beat.t, beat.cause or "unknown", False))
        return sorted(found)

    def firmware_near(self, t: int, before: int, after: int) -> list[FirmwareChange]:
        return [
            FirmwareChange(a.t, b.t, a.fw, b.fw)
            for a, b in self._pairs(t - before, t + after)
            if a.fw and b.fw and a.fw != b.fw and b.t >= t - before
        ]

    def _pairs(self, lo: int, hi: int) -> list[tuple[Beat, Beat]]:
        """Consecutive heartbeats whose interval meets [lo, hi]: found by bisection, a device
        sends thousands of them."""
        i = max(0, bisect.bisect_left(self.beats, lo, key=lambda b: b.t) - 1)
        out = []
        while i + 1 < len(self.beats) and self.beats[i].t <= hi:
            out.append((self.beats[i], self.beats[i + 1]))
            i += 1
        return out

    @property
    def last_beat(self) -> Beat | None:
        """The latest heartbeat: when the device was last connected and said so."""
        return self.beats[-1] if self.beats else None

    def beat_after(self, t: int) -> Beat | None:
        """The first heartbeat at or after `t`: the backlog and reconnects just after a sale."""
        i = bisect.bisect_left(self.beats, t, key=lambda b: b.t)
        return self.beats[i] if i < len(self.beats) else None

    def outages_near(self, t: int, before: int = 900, after: int = 900) -> list[Outage]:
        return [
            o
            for o in self.outages
            if o.start <= t + after and (o.end is None or o.end >= t - before)
        ]

    def signal_at(self, t: int) -> dict[str, Any] | None:
        before = self.signal_before(t)
        return before[1] if before is not None else None

    def signal_before(self, t: int) -> tuple[int, dict[str, Any]] | None:
        """The last signal reading at or before `t`, with its time."""
        i = bisect.bisect_right(self.signal_t, t)
        return (self.signal_t[i - 1], self.signal[i - 1]) if i else None


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
    # The acquirers' announced maintenance windows, by acquirer code (settle notices import).
    notices: dict[str, list[Notice]] = field(default_factory=dict)
    # Healthy merchants unpaid per (acquirer, expected date), when a scoped load counted them
    # over the whole acquirer-day (correlate/scope.py); empty for a whole-store load.
    healthy_by_day: dict[tuple[str, date | None], set[str]] = field(default_factory=dict)
    # RRNs named as their original by a completion or void anywhere in the store, when the
    # load is a part of it (a merchant range, chunk.py): the closing receipt or row may carry
    # another merchant's number (terminal.Index adds its own).
    closed_rrn: set[str] = field(default_factory=set)

    def window(self, acquirer: str, lo: int, hi: int) -> Notice | None:
        """The acquirer's announced window overlapping [lo, hi], if any (the longest)."""
        hits = [n for n in self.notices.get(acquirer, ()) if n.start <= hi and n.end >= lo]
        return max(hits, key=lambda n: n.end - n.start) if hits else None

    def file_imported(self, kind: str, acquirer: str, day: date) -> bool:
        files = self.detail_files if kind == "detail" else self.payout_files
        text = day.isoformat()
        return (acquirer, text) in files or ("", text) in files

    def all_detail(self) -> list[Detail]:
        return [d for d in self.matched if d is not None] + self.detail


_R_COLS = (
    "r.mid, r.tid, r.bat, r.trc, r.dev, r.typ, r.amt, r.pan, r.ck, r.lt, r.st,"
    " r.rrn, r.rv, r.sd, r.sm, r.otrc, r.orrn, COALESCE(r.placed_t, r.t),"
    " r.received_at, r.ord, r.xid"
)
_D_COLS = (
    "d.file_id, d.line, d.settle_date, d.mid, d.tid, d.txn_time, d.typ, d.bat,"
    " d.trc, d.rrn, d.orrn, d.pan, d.ck, d.amt, d.fee, d.settle_amt, d.direction,"
    " d.settle_type, d.check_flag, d.payout_id, d.ord, d.xid"
)
_N_R = 21  # receipt columns before the detail row's
# The RRN match is a join the database does best; the rare fallbacks (no RRN, natural key and
# amount) are done in memory on the rows this join leaves over.
_MATCHED_SQL = (
    f"SELECT {_R_COLS}, {_D_COLS} FROM receipts r"
    " LEFT JOIN settle_detail d ON d.rrn = r.rrn AND d.mid = r.mid"
)


def key_rows_sql(tx: Transaction) -> str:
    """Rows of a receipt's natural key (mid, tid, bat, trc) no receipt's RRN claims, in file
    order: through `(tid, trc)`, a terminal's trace naming about one row (settle v7 dropped
    the four-column key index; SQLite's planner, without statistics, ranged the merchant's
    rows through `(mid, txn_time)` instead, so it is told)."""
    by = " INDEXED BY settle_detail_trace" if tx.dialect == "sqlite" else ""
    return (
        f"SELECT {_D_COLS} FROM settle_detail d{by} WHERE d.mid = ? AND d.tid = ? AND d.bat = ?"
        " AND d.trc = ? AND NOT EXISTS (SELECT 1 FROM receipts r2"
        " WHERE r2.rrn = d.rrn AND r2.mid = d.mid) ORDER BY d.file_id, d.line"
    )


_UNMATCHED_SQL = (
    f"SELECT {_D_COLS} FROM settle_detail d WHERE NOT EXISTS"
    " (SELECT 1 FROM receipts r WHERE r.rrn = d.rrn AND r.mid = d.mid)"
)


def by_rrn(tx: Transaction, sql: str) -> str:
    """The receipt-row join through the RRN indexes. SQLite's planner, without statistics (a
    store never ANALYZEd), took the merchant's (mid, time) index for `d.mid = r.mid` and read
    every row of the merchant for each receipt: 160 s a chunk of 40,000 receipts."""
    if tx.dialect != "sqlite":
        return sql
    sql = sql.replace("settle_detail d ON", "settle_detail d INDEXED BY settle_detail_rrn ON")
    return sql.replace("FROM receipts r WHERE", "FROM receipts r INDEXED BY receipts_rrn WHERE")


# Heartbeats older than this before the as-of time are not read: a sale's evidence lies within
# hours of it, and a device silent for longer is silent whatever came before.
HEARTBEAT_LOOKBACK_S = 40 * 86_400


# What closes an original by its RRN (terminal.Index): an undoing receipt the terminal got
# an answer for, or a completion or pre-authorisation void in the acquirer's file. Both read
# through the partial `orrn` indexes, so only the few rows that name an original.
_CLOSING_RECEIPTS_SQL = (
    "SELECT orrn FROM receipts WHERE orrn IS NOT NULL"
    " AND typ IN ('void', 'preauth_void', 'preauth_done', 'preauth_done_void')"
    " AND st IN ('approved', 'offline_sent', 'offline_pending')"
)
_CLOSING_ROWS_SQL = (
    "SELECT orrn FROM settle_detail WHERE orrn <> '' AND typ IN ('preauth_done', 'preauth_void')"
)


def closing_rrns(tx: Transaction) -> set[str]:
    """Every RRN a completion or void of the store names (Data.closed_rrn)."""
    out = {str(r[0]) for r in tx.execute(_CLOSING_RECEIPTS_SQL) if r[0]}
    out.update(str(r[0]) for r in tx.execute(_CLOSING_ROWS_SQL))
    return out


def load(
    store: Store,
    merchant: str | None = None,
    device: str | None = None,
    as_of: int | None = None,
) -> Data:
    """Everything correlation reads; device facts only up to `as_of` in event time."""
    receipts: list[Receipt] = []
    matched: list[Detail | None] = []
    last: tuple[Any, ...] = ()
    make_r, make_d = Receipt._make, Detail._make
    with store.snapshot() as tx:  # one view, no write lock held against collectors
        where, params = _filter(merchant, device, "r.")
        for row in tx.execute(by_rrn(tx, _MATCHED_SQL) + where, params):
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
            map(
                make_d,
                tx.execute(by_rrn(tx, _UNMATCHED_SQL) + dwhere.replace(" WHERE", " AND"), dparams),
            )
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
        merchants = load_merchants(tx)
        notices = load_notices(tx)
        detail_files, payout_files = _files(tx)
        terminal_dev = _terminals(tx)
        timelines = _timelines(tx, device, 2**62 if as_of is None else as_of)
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
        notices,
    )


def load_merchants(tx: Transaction) -> dict[str, Merchant]:
    """Every merchant (a small table): the registry of terminal numbers needs them all."""
    return {
        r3[0]: Merchant._make((*r3[:-1], tuple(str(r3[-1]).split())))
        for r3 in tx.execute(
            "SELECT mid, acquirer, fee_rate, debit_cap_fen, d0_surcharge, settle_type, status,"
            " delay_days, reserve_rate, reserve_release, terminals FROM merchants"
        )
    }


def load_notices(tx: Transaction) -> dict[str, list[Notice]]:
    """The acquirers' announced maintenance windows, by acquirer, earliest first."""
    notices: dict[str, list[Notice]] = defaultdict(list)
    for a, lo, hi, what, line in tx.execute(
        "SELECT acquirer, start_t, end_t, what, line FROM notices ORDER BY start_t"
    ):
        notices[str(a)].append(Notice(str(a), int(lo), int(hi), str(what), int(line)))
    return dict(notices)


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


def payouts_named(tx: Transaction, ids: set[str]) -> dict[str, Payout]:
    """The payouts these ids name, each its latest row (a later file's state wins)."""
    payouts: dict[str, Payout] = {}
    for pid in sorted(ids):
        for p in tx.execute(
            "SELECT payout_id, mid, settle_type, settle_date, plan_fen, fee_fen, suspend_fen,"
            " retained_fen, real_fen, state, fail_reason, bank_account FROM payouts"
            " WHERE payout_id = ? ORDER BY file_id, line",
            (pid,),
        ):
            payouts[str(p[0])] = Payout(*p)
    return payouts


def latest_device(tx: Transaction, mid: str, tid: str) -> str | None:
    """The device that reported this terminal last (as `_terminals` reads every terminal)."""
    found = tx.execute(
        "SELECT dev FROM device_terminals WHERE mid = ? AND tid = ? ORDER BY last_seen",
        (mid, tid),
    )
    return str(found[-1][0]) if found else None


def _terminals(tx: Transaction) -> dict[tuple[str, str], str]:
    """Which device serves a terminal: the one that reported it last."""
    out: dict[tuple[str, str], str] = {}
    for dev, mid, tid in tx.execute(
        "SELECT dev, mid, tid FROM device_terminals ORDER BY last_seen"
    ):
        out[(mid, tid)] = dev
    return out


def _timelines(tx: Transaction, device: str | None, as_of: int) -> dict[str, Timeline]:
    return timelines_of(tx, None if device is None else [device], as_of)


def timelines_of(tx: Transaction, devices: list[str] | None, as_of: int) -> dict[str, Timeline]:
    """The timelines of these devices (None: of every device), up to `as_of` in event time."""
    lines: dict[str, Timeline] = defaultdict(Timeline)
    if devices is not None and not devices:
        return {}
    where = f" AND dev IN ({', '.join('?' * len(devices))})" if devices else ""
    params: tuple[Any, ...] = tuple(devices) if devices else ()
    open_down: dict[str, Outage] = {}
    for dev, t, ev, body_json in tx.execute(
        "SELECT dev, COALESCE(placed_t, t), ev, body_json FROM diag_events"
        " WHERE ev IN ('link_down', 'link_up', 'signal', 'boot') AND COALESCE(placed_t, t) > 0"
        " AND COALESCE(placed_t, t) <= ?" + where + " ORDER BY dev, epoch, seq",
        (as_of, *params),
    ):
        line = lines[dev]
        if ev == "boot":
            line.boots.append(
                Reboot(int(t), str(json.loads(body_json).get("cause", "unknown")), True)
            )
        elif ev == "link_down":
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
    for dev, beat in _beats(tx, devices, as_of):
        lines[dev].beats.append(beat)
    for line in lines.values():
        line.beats.sort(key=lambda b: b.t)
        line.boots.sort()
    return dict(lines)


def _beats(tx: Transaction, wanted: list[str] | None, as_of: int) -> list[tuple[str, Beat]]:
    """Heartbeats in event time: the device's clock `t`, or, while it did not know the time
    (`t = 0`), the clock reference its records of the same boot gave the collector (ack_state:
    `ref_t` at uptime `ref_up`) plus the heartbeat's own uptime. One that cannot be placed is
    left out: its host receive time says nothing of when the device was connected. Read per
    device through the (dev, t, id) index: heartbeats pile up, one every few minutes."""
    devices = wanted or [str(r[0]) for r in tx.execute("SELECT dev FROM devices")]
    some = f" AND dev IN ({', '.join('?' * len(wanted))})" if wanted else ""
    refs = {
        (str(dev), int(epoch)): (ref_boot, ref_t, ref_up)
        for dev, epoch, ref_boot, ref_t, ref_up in tx.execute(
            "SELECT dev, epoch, ref_boot, ref_t, ref_up FROM ack_state WHERE ref_t IS NOT NULL"
            + some,
            tuple(wanted or ()),
        )
    }
    out = []
    for dev in devices:
        rows = tx.execute(
            "SELECT t, epoch, boot, up, jrec, recon, link, fw, cause FROM heartbeats"
            " WHERE dev = ? AND (t = 0 OR t BETWEEN ? AND ?)",
            (dev, as_of - HEARTBEAT_LOOKBACK_S, as_of),
        )
        for clock_t, epoch, boot, up, jrec, recon, link, fw, cause in rows:
            placed = not clock_t
            if not placed:
                t = int(clock_t)
            else:
                ref_boot, ref_t, ref_up = refs.get((dev, int(epoch or 0)), (None, None, None))
                if ref_t is None or ref_boot != boot or up is None or ref_up is None:
                    continue
                t = int(ref_t) + (int(up) - int(ref_up)) // 1000
                if t > as_of:
                    continue
            beat = Beat(t, placed, _int(jrec), _int(recon), link, fw, _int(boot), cause)
            out.append((dev, beat))
    return out


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None
