"""`fleet status`: one row per device from the store, sorted worst first.

Each row joins the device (last seen, online/offline from status and LWT), its latest
heartbeat (backlog: unacked records and the age of the oldest, less those the collector has
stored since, the heartbeat being up to an interval old; link; signal) and the sums of
its heartbeats over the last day (reconnects, successful and failed uploads) and what the
collector refused from it over the last day (quarantine, by reason). The ordering
puts the devices a monitoring desk must look at first on top: silent or offline with unsent
records, then silent or offline, then a growing backlog, failing uploads or refused messages,
then the rest. Refusals are named in every row's problem: a backlog that grows because every
batch fails its MAC (a device re-flashed with another key) says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any

from daozhang.collector.accounting import still_unsent
from daozhang.collector.quarantine_read import refusals_by_device
from daozhang.collector.retention import SUMMED_WINDOW_S
from daozhang.store import Store


@dataclass(frozen=True)
class DeviceStatus:
    dev: str
    mid: str | None
    tid: str | None
    online: bool
    last_seen: float | None  # host time: when the collector last heard from it
    silent_s: float | None  # seconds since anything was heard from it (host time)
    # The terminal's clock at its latest heartbeat, which the backlog, link and signal
    # below are from (None while it did not know the time).
    reported_at: int | None
    backlog: int | None  # of the records unacked at the latest heartbeat, those not stored yet
    reported_backlog: int | None  # unacked records, as the latest heartbeat said
    oldest_s: int | None  # age of the oldest of them then (None once none are left)
    link: str | None
    signal: dict[str, Any]
    reconnects: int  # over the last day
    sync_ok: int
    sync_fail: int
    upto: int | None  # highest contiguous seq stored, for its latest epoch
    refused: dict[str, int]  # quarantine over the last day: reason -> times, repeats included
    level: int  # 3 worst .. 0 healthy
    problem: str
    fw: str | None = None  # the running version, as the latest heartbeat said
    update: str | None = None  # the last update's state (heartbeat `ota`, DESIGN §1.6)


def _level(row: DeviceStatus, silent_after_s: float, backlog_age_s: float) -> tuple[int, str]:
    silent = row.silent_s is None or row.silent_s > silent_after_s
    unsent = (row.backlog or 0) > 0
    if (silent or not row.online) and unsent:
        return 3, f"{'silent' if silent else 'offline'} with {row.backlog} unsent records"
    if silent and row.silent_s is None and row.refused:
        # Heard, but every message refused (a key re-flashed, a forged sender): the refusals
        # are the problem, named next; "never heard from" would send someone to the shop.
        return 2, ""
    if silent:
        return 2, "never heard from" if row.silent_s is None else "silent"
    if not row.online:
        return 2, "offline"
    if unsent and (row.oldest_s or 0) > backlog_age_s:
        return 1, f"backlog {row.backlog} records, oldest {row.oldest_s} s"
    if row.sync_fail > row.sync_ok:
        return 1, "uploads failing"
    return (1 if row.refused else 0), ""


def refused_text(refused: dict[str, int]) -> str:
    """`refused 12 (mac 10, record_schema 2)`, most frequent reason first."""
    ranked = sorted(refused.items(), key=lambda item: (-item[1], item[0]))
    return f"refused {sum(refused.values())} ({', '.join(f'{r} {n}' for r, n in ranked)})"


def fleet_status(
    store: Store, now: float, silent_after_s: float = 900, backlog_age_s: float = 600
) -> list[DeviceStatus]:
    # Plain reads outside any write transaction (`Store.query`): on SQLite a transaction
    # here would be BEGIN IMMEDIATE, the write lock, held while a large fleet is read, and
    # every collector's commit would wait for it.
    rows = store.query(
        # The latest heartbeat by the terminal's clock (then by arrival, for heartbeats
        # sent before it knew the time): a late-delivered old one must not replace it.
        "SELECT d.dev, d.mid, d.tid, d.online, d.last_seen, h.jrec, h.jold_s, h.link,"
        " h.body_json, h.epoch, h.next_seq, h.t, h.fw FROM devices d LEFT JOIN heartbeats h"
        " ON h.id = (SELECT id FROM heartbeats WHERE dev = d.dev ORDER BY t DESC, id DESC"
        " LIMIT 1)"
    )
    sums = {
        str(dev): (int(recon or 0), int(ok or 0), int(fail or 0))
        for dev, recon, ok, fail in store.query(
            # Per device, the last day by the terminal's clock (a range of (dev, t)), or by
            # arrival for heartbeats sent before it knew the time (t = 0). Two ranges, not one
            # OR: each reads an index range (the console's `heartbeats_sums` covers the
            # first), where the OR would read every heartbeat the device ever sent. CROSS JOIN
            # keeps devices the outer loop on SQLite (it has no statistics to choose by);
            # PostgreSQL plans it as any join. The second range is (dev, t = 0) of the same
            # covering index: `+received_at` keeps SQLite off (dev, received_at), which
            # looked up the table for every heartbeat of the day to test t (15-21 s at
            # 10,000 devices x 30 days, once the table outgrew the page cache).
            "SELECT dev, SUM(recon), SUM(sync_ok), SUM(sync_fail) FROM ("
            " SELECT h.dev, h.recon, h.sync_ok, h.sync_fail FROM devices d"
            " CROSS JOIN heartbeats h WHERE h.dev = d.dev AND h.t >= ?"
            " UNION ALL SELECT h.dev, h.recon, h.sync_ok, h.sync_fail FROM devices d"
            " CROSS JOIN heartbeats h WHERE h.dev = d.dev AND h.t = 0 AND +h.received_at >= ?"
            ") s GROUP BY dev",
            # `t` is an integer column: bound it by an integer. With the console's float
            # `now`, PostgreSQL compared every heartbeat's t as double precision and read
            # each device's whole month (66 s at 10,000 devices x 30 days, not 2 s).
            (math.ceil(now - SUMMED_WINDOW_S), now - SUMMED_WINDOW_S),
        )
    }
    uptos = {
        str(dev): int(upto)
        for dev, upto in store.query(
            "SELECT a.dev, a.upto FROM ack_state a WHERE a.updated_at ="
            " (SELECT MAX(updated_at) FROM ack_state WHERE dev = a.dev)"
        )
    }
    accounted = {
        (str(dev), int(epoch)): int(upto)
        for dev, epoch, upto in store.query("SELECT dev, epoch, upto FROM ack_state")
    }
    refused = refusals_by_device(store, now - SUMMED_WINDOW_S)
    result = []
    for row_values in rows:
        (
            dev,
            mid,
            tid,
            online,
            last_seen,
            jrec,
            jold_s,
            link,
            body_json,
            epoch,
            next_seq,
            hb_t,
            fw,
        ) = row_values
        body = json.loads(body_json) if body_json else {}
        backlog = still_unsent(jrec, next_seq, accounted.get((dev, epoch)))
        sig = body.get("sig")
        signal: dict[str, Any] = sig if isinstance(sig, dict) else {}
        recon, ok, fail = sums.get(dev, (0, 0, 0))
        row = DeviceStatus(
            dev=dev,
            mid=mid,
            tid=tid,
            online=bool(online),
            last_seen=last_seen,
            silent_s=None if last_seen is None else max(0.0, now - last_seen),
            reported_at=int(hb_t) if hb_t else None,
            backlog=backlog,
            reported_backlog=jrec,
            oldest_s=jold_s if backlog else None,
            link=link,
            signal=signal,
            reconnects=recon,
            sync_ok=ok,
            sync_fail=fail,
            upto=uptos.get(dev),
            refused=refused.get(dev, {}),
            level=0,
            problem="",
            fw=str(fw) if fw else None,
            update=update.partition(" ")[2] if isinstance(update := body.get("ota"), str) else None,
        )
        level, problem = _level(row, silent_after_s, backlog_age_s)
        refusals = refused_text(row.refused) if row.refused else ""
        # An update under way or one that failed is worth a word; a confirmed one is not.
        under_way = row.update and not row.update.startswith(("confirmed", "refused downgrade"))
        updating = f"update {row.update} (running {row.fw})" if under_way else ""
        problem = "; ".join(p for p in (problem, refusals, updating) if p) or "ok"
        result.append(_with(row, level, problem))
    result.sort(
        key=lambda r: (-r.level, -(r.backlog or 0) * (r.level > 0), -(r.oldest_s or 0), r.dev)
    )
    return result


def _with(row: DeviceStatus, level: int, problem: str) -> DeviceStatus:
    return replace(row, level=level, problem=problem)


def signal_text(signal: dict[str, Any]) -> str:
    parts = [str(signal["rat"])] if "rat" in signal else []
    parts += [f"{k}={signal[k]}" for k in ("rsrp", "rssi", "csq", "sinr") if k in signal]
    return " ".join(parts) or "-"
