"""The fleet rules, read from the store as `fleet status` reads it (DESIGN §2.4): backlog,
signal and journal from each device's heartbeats in event time; "silent" is host time (when
the collector last heard from it), a host question.

- `silent_unsent`: not heard from for N minutes, in business hours, with unsent records;
- `oldest_unsent`: its oldest unsent record older than N minutes (the latest heartbeat's
  `jold_s` plus the event time since that heartbeat);
- `journal_full`: the journal's bytes, less what the collector has stored since, at or past
  a share of its capacity (the heartbeat's `jcap`; the rules file's for older firmware);
- `signal_poor`: every heartbeat for N minutes below the floor;
- `cell_down`: K or more devices of one cell (the `cell` of their latest signal) silent for
  N minutes at once;
- `quarantine_spike`: K or more refused messages across the fleet in N minutes (host time:
  quarantine rows have no other; the same bytes again are one row, counted once).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from daozhang.alerts.alert import Alert, Verdict, beijing, minutes
from daozhang.alerts.rules import Rules
from daozhang.fleet.status import DeviceStatus, fleet_status
from daozhang.radio import describe
from daozhang.store import Store


def evaluate_fleet(store: Store, rules: Rules, now: float, in_hours: bool, out: Verdict) -> None:
    fleet_on = any(
        rules.on(r) for r in ("silent_unsent", "oldest_unsent", "journal_full", "cell_down")
    )
    devices = fleet_status(store, now) if fleet_on else []
    if rules.on("silent_unsent"):
        _silent_unsent(devices, rules.get("silent_unsent", "minutes") * 60, now, in_hours, out)
    if rules.on("oldest_unsent"):
        _oldest_unsent(devices, rules.get("oldest_unsent", "minutes") * 60, now, out)
    if rules.on("journal_full"):
        _journal_full(store, devices, rules.rules["journal_full"], out)
    if rules.on("cell_down"):
        table = rules.rules["cell_down"]
        _cell_down(devices, int(table["terminals"]), table["minutes"] * 60, now, out)
    if rules.on("signal_poor"):
        _signal_poor(store, rules.rules["signal_poor"], now, out)
    if rules.on("quarantine_spike"):
        table = rules.rules["quarantine_spike"]
        _quarantine_spike(store, int(table["count"]), table["minutes"] * 60, now, out)


def _where(d: DeviceStatus) -> tuple[str, str]:
    if d.mid and d.tid:
        return f"(商户 {d.mid} 终端 {d.tid})", f"(merchant {d.mid} terminal {d.tid})"
    return "", ""


def _silent_unsent(
    devices: list[DeviceStatus], after_s: float, now: float, in_hours: bool, out: Verdict
) -> None:
    for d in devices:
        if d.silent_s is None or d.silent_s < after_s or not d.backlog:
            continue
        zh_where, en_where = _where(d)
        alert = Alert(
            "silent_unsent",
            d.dev,
            f"终端 {d.dev}{zh_where} 已 {minutes(d.silent_s)} 分钟无消息,"
            f"设备上有 {d.backlog} 条未上传记录(最后联系 {beijing(now - d.silent_s)})",
            f"device {d.dev} {en_where} silent for {minutes(d.silent_s)} min with "
            f"{d.backlog} unsent records (last heard {beijing(now - d.silent_s)})",
            {
                "dev": d.dev,
                "mid": d.mid,
                "tid": d.tid,
                "silent_s": round(d.silent_s),
                "unsent": d.backlog,
                "last_heard": beijing(now - d.silent_s),
            },
        )
        if in_hours:
            out.add(alert)
        else:
            out.held.add(alert.key)


def oldest_age_s(d: DeviceStatus, now: float) -> float | None:
    """The age now of the oldest record the device holds unsent, in event time."""
    if not d.backlog or d.oldest_s is None:
        return None
    since = now - d.reported_at if d.reported_at else (d.silent_s or 0.0)
    return d.oldest_s + max(0.0, since)


def _oldest_unsent(devices: list[DeviceStatus], after_s: float, now: float, out: Verdict) -> None:
    for d in devices:
        age = oldest_age_s(d, now)
        if age is None or age < after_s:
            continue
        out.add(
            Alert(
                "oldest_unsent",
                d.dev,
                f"终端 {d.dev} 最早一条未上传记录已 {minutes(age)} 分钟(共 {d.backlog} 条未上传)",
                f"device {d.dev}: oldest unsent record is {minutes(age)} min old "
                f"({d.backlog} unsent)",
                {"dev": d.dev, "oldest_s": round(age), "unsent": d.backlog},
            )
        )


def _journal_sizes(store: Store) -> dict[str, tuple[int | None, int | None]]:
    """dev -> (journal bytes unacked, journal capacity) of its latest heartbeat."""
    rows = store.query(
        "SELECT d.dev, h.jbytes, h.body_json FROM devices d JOIN heartbeats h"
        " ON h.id = (SELECT id FROM heartbeats WHERE dev = d.dev ORDER BY t DESC, id DESC"
        " LIMIT 1)"
    )
    out: dict[str, tuple[int | None, int | None]] = {}
    for dev, jbytes, body_json in rows:
        try:
            cap = json.loads(body_json).get("jcap")
        except (ValueError, AttributeError):
            cap = None
        usable = isinstance(cap, int) and cap > 0
        out[str(dev)] = (None if jbytes is None else int(jbytes), cap if usable else None)
    return out


def _journal_full(
    store: Store, devices: list[DeviceStatus], table: dict[str, Any], out: Verdict
) -> None:
    sizes = _journal_sizes(store)
    for d in devices:
        jbytes, jcap = sizes.get(d.dev, (None, None))
        # The device's own capacity (heartbeat `jcap`); the file's for firmware without it.
        capacity = jcap or table["capacity_bytes"]
        if jbytes is None or not d.reported_backlog or not d.backlog:
            continue
        # What the collector stored since the heartbeat is no longer on the device (nearly:
        # the device deletes a segment once it is acked); scale the bytes by what is left.
        held = jbytes * d.backlog / d.reported_backlog
        percent = 100.0 * held / capacity
        if percent < table["percent"]:
            continue
        out.add(
            Alert(
                "journal_full",
                d.dev,
                f"终端 {d.dev} 日志已用 {percent:.0f}%({d.backlog} 条未上传),满后将拒收新交易",
                f"device {d.dev}: journal {percent:.0f}% full ({d.backlog} unsent); "
                "when full it refuses new receipts",
                {"dev": d.dev, "percent": round(percent, 1), "unsent": d.backlog},
            )
        )


def _cell_down(
    devices: list[DeviceStatus], terminals: int, after_s: float, now: float, out: Verdict
) -> None:
    cells: dict[str, list[DeviceStatus]] = defaultdict(list)
    for d in devices:
        cell = d.signal.get("cell")
        if cell is None or d.silent_s is None or d.silent_s < after_s:
            continue
        cells[str(cell)].append(d)
    for cell, down in sorted(cells.items()):
        if len(down) < terminals:
            continue
        since = now - max(d.silent_s or 0.0 for d in down)
        names = ", ".join(sorted(d.dev for d in down)[:10]) + (" …" if len(down) > 10 else "")
        out.add(
            Alert(
                "cell_down",
                cell,
                f"基站小区 {cell}:{len(down)} 台终端同时失联(最早 {beijing(since)}),"
                f"多为运营商侧故障:{names}",
                f"cell {cell}: {len(down)} terminals down at once (first at {beijing(since)}), "
                f"likely the carrier: {names}",
                {"cell": cell, "down": len(down), "devices": sorted(d.dev for d in down)},
            )
        )


def _poor(signal: Any, table: dict[str, Any]) -> tuple[bool, str] | None:
    """(below the floor, description) for a heartbeat's `sig`, None when it says nothing."""
    if not isinstance(signal, dict):
        return None
    if isinstance(signal.get("rsrp"), int):
        return signal["rsrp"] < table["rsrp_dbm"], describe(signal)
    if isinstance(signal.get("rssi"), int):
        return signal["rssi"] < table["rssi_dbm"], describe(signal)
    csq = signal.get("csq")
    if isinstance(csq, int) and 0 <= csq <= 31:
        return -113 + 2 * csq < table["rssi_dbm"], describe(signal)
    return None


def _signal_poor(store: Store, table: dict[str, Any], now: float, out: Verdict) -> None:
    window_s = table["minutes"] * 60
    rows = store.query(
        # Event time: a day of heartbeats uploaded late says what it would have said live.
        "SELECT dev, t, body_json FROM heartbeats WHERE t >= ? AND t <= ? ORDER BY dev, t, id",
        (int(now - 2 * window_s), int(now)),
    )
    state: dict[str, tuple[int | None, str]] = {}  # dev -> (poor since, latest description)
    for dev, t, body_json in rows:
        try:
            signal = json.loads(body_json).get("sig")
        except (ValueError, AttributeError):
            continue
        reading = _poor(signal, table)
        if reading is None:
            continue
        poor, text = reading
        since = state.get(dev, (None, ""))[0]
        state[dev] = ((since if since is not None else int(t)) if poor else None, text)
    for dev, (since, text) in sorted(state.items()):
        if since is None or now - since < window_s:
            continue
        out.add(
            Alert(
                "signal_poor",
                dev,
                f"终端 {dev} 信号差已 {minutes(now - since)} 分钟:{text}",
                f"device {dev}: poor signal for {minutes(now - since)} min: {text}",
                {"dev": dev, "since": since, "signal": text},
            )
        )


def _quarantine_spike(store: Store, count: int, window_s: float, now: float, out: Verdict) -> None:
    rows = store.query(
        "SELECT reason, COUNT(*) FROM quarantine WHERE last_at >= ? GROUP BY reason",
        (now - window_s,),
    )
    by_reason = {str(reason): int(n) for reason, n in rows}
    total = sum(by_reason.values())
    if total < count:
        return
    ranked = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    reasons = ", ".join(f"{r} {n}" for r, n in ranked[:5])
    out.add(
        Alert(
            "quarantine_spike",
            "fleet",
            f"{minutes(window_s)} 分钟内收集器拒收 {total} 条消息({reasons})",
            f"{total} messages refused by the collector in {minutes(window_s)} min ({reasons})",
            {"refused": total, "by_reason": by_reason},
        )
    )
