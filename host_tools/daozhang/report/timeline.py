"""One device's timeline, in time and words: what `timeline.js` draws, with no geometry.

The timeline answers "did the network break these sales?", so it spans the business day of the
device's transactions (earliest to latest transaction time, with a margin, on whole hours), not
every fact the device ever sent: a week of signal readings around one day of sales would squeeze
the sales into a few pixels. Facts outside the span are clipped, and counted where a reader
would otherwise miss them (outages). Every time is Beijing time; every tooltip is written here,
from `words.py`, so the page's script only places marks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from daozhang import words
from daozhang.correlate.classify import NETWORK_CAUSES, Finding
from daozhang.correlate.data import Timeline
from daozhang.units import BEIJING, beijing_text, fen_to_yuan
from daozhang.words import name

HOUR = 3600
MARGIN_S = 30 * 60  # at least this much room before the first and after the last sale

# Outage bands are coloured by the stage that failed: a radio problem (link) calls for a
# different fix than a TLS or collector problem (ack). None of these is the red of a sale that
# was not paid or the dark grey of the signal line, so a band never reads as a sale.
STAGE_COLOUR = {
    "link": "#9c755f",
    "dhcp": "#edc948",
    "dns": "#76b7b2",
    "tcp": "#f28e2b",
    "tls": "#b07aa1",
    "mqtt": "#4e79a7",
    "ack": "#8cd17d",
}
OTHER_STAGE_COLOUR = "#bab0ac"

# The signal metric a device reports, best first: RSRP is what LTE coverage is judged by;
# RSSI is all Wi-Fi (and 2G) gives. CSQ alone (some modems) is converted to RSSI in dBm by
# 3GPP TS 27.007 (0 = -113 dBm, 2 dBm a step, 31 = -51 dBm or better), so that one dBm
# scale serves every device.
SIGNAL_LABEL = {
    "rsrp": "RSRP dBm",
    "rssi": "RSSI dBm",
    "csq": "RSSI dBm (由CSQ换算 from CSQ)",
}


def clock(t: float, seconds: bool = False) -> str:
    return datetime.fromtimestamp(t, BEIJING).strftime("%H:%M:%S" if seconds else "%H:%M")


def stamp(t: float, seconds: bool = False) -> str:
    return beijing_text(t, seconds)


def duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} 秒 s"
    m = (s + 30) // 60
    if m < 60:
        return f"{m} 分钟 min"
    return f"{m // 60} 小时 {m % 60} 分钟 {m // 60} h {m % 60} min"


def span(findings: list[Finding], as_of: int) -> tuple[int, int]:
    """The business day of these transactions: first to last transaction time, with a margin
    of at least half an hour, widened to whole hours (Beijing and UTC hours coincide)."""
    times = [t for t in (_when(f) for f in findings) if t is not None]
    if not times:
        return as_of - 24 * HOUR, as_of
    lo, hi = min(times), max(times)
    margin = max(MARGIN_S, (hi - lo) // 20)
    return (lo - margin) // HOUR * HOUR, -(-(hi + margin) // HOUR) * HOUR


def ticks(t0: int, t1: int) -> list[tuple[int, str]]:
    """Axis ticks on round Beijing times, about a dozen; a midnight tick shows the date."""
    step = next(s for s in (HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 48 * HOUR)
                if (t1 - t0) / s <= 14)  # fmt: skip
    local = t0 + 8 * HOUR
    first = -(-local // step) * step - 8 * HOUR
    out = []
    for t in range(first, t1 + 1, step):
        at = datetime.fromtimestamp(t, BEIJING)
        out.append((t, at.strftime("%m-%d") if (at.hour, at.minute) == (0, 0) else clock(t)))
    return out


def _when(f: Finding) -> int | None:
    if f.lt:
        return f.lt
    if f.receipt is not None and f.receipt.t:
        return f.receipt.t
    return None


def outages(line: Timeline | None, t0: int, t1: int, as_of: int) -> tuple[list[Any], int]:
    """Outages overlapping the span as [start, end, colour, stage, tooltip]; and how many lie
    outside it."""
    if line is None:
        return [], 0
    shown, outside = [], 0
    for o in line.outages:
        end = o.end if o.end is not None else max(as_of, o.start)
        if end < t0 or o.start > t1:
            outside += 1
            continue
        until = clock(end) if stamp(end)[:10] == stamp(o.start)[:10] else stamp(end)
        if o.end is None:
            until += " (未恢复 not restored when last heard)"
        tip = "\n".join((
            f"断网 outage {stamp(o.start)} – {until} 北京时间 Beijing time",
            f"失败阶段 failing stage: {name(words.STAGE, o.stage)}",
            f"原因 reason: {o.why or '未说明 not given'}",
            f"时长 duration: {duration(end - o.start)}",
        ))  # fmt: skip
        colour = STAGE_COLOUR.get(o.stage, OTHER_STAGE_COLOUR)
        shown.append([o.start, end, colour, o.stage, tip])
    return shown, outside


def signal(line: Timeline | None, t0: int, t1: int) -> dict[str, Any] | None:
    """The device's signal in dBm as a step line (a reading holds until the next one), from
    the reading in force at the start of the span to the device's last fact in it."""
    if line is None or not line.signal:
        return None
    metric = next((k for k in ("rsrp", "rssi", "csq") if any(k in s for s in line.signal)), "")
    if not metric:
        return None
    points: list[list[int]] = []
    for t, s in zip(line.signal_t, line.signal, strict=True):
        value = s.get(metric)
        if not isinstance(value, int | float):
            continue
        dbm = int(-113 + 2 * value) if metric == "csq" else int(value)
        if t <= t0:
            points = [[t0, dbm]]  # the reading in force when the span opens
        elif t <= t1:
            points.append([t, dbm])
    last = max([line.signal_t[-1], *(o.end or o.start for o in line.outages)])
    if not points or last <= t0:
        return None  # no reading in the span, or the device fell silent before it began
    end = min(t1, max(last, points[-1][0]))
    return {"label": SIGNAL_LABEL[metric], "points": points, "end": end}


def transaction(f: Finding, net: bool) -> dict[str, Any] | None:
    """A transaction on three lanes: captured on the terminal (its time `lt`), uploaded (the
    collector's receive time of its latest state) and the acquirer's settlement row (the row's
    transaction time, so that it lines up with the capture; its settle date is in the tip)."""
    lt = _when(f)
    if lt is None:
        return None
    r, d = f.receipt, f.row
    typ = r.typ if r else (d.typ if d else "sale")
    key = (typ, f.status, f.cause, net, r.st if r is not None else None, f.data)
    said = _SAID.get(key)
    if said is None:
        said = _SAID[key] = _said(*key)
    where = "(终端时间 terminal time)" if r else "(收单方时间 acquirer's time)"
    amount = fen_to_yuan(f.amount_fen)
    tip = f"{said[0]} {beijing_text(lt)} {where}\n流水号 trace {f.trc} · 金额 amount ¥{amount}\n"
    tip += said[1]
    out: dict[str, Any] = {
        "trc": f.trc, "lt": lt, "net": net, "status": f.status, "have": r is not None,
        "tip": tip,
    }  # fmt: skip
    if r is not None:
        up = int(r.received_at)
        out["up"] = up
        out["up_tip"] = (f"上传 uploaded {beijing_text(up)} (主机接收时间 host receive time)"
                         f"\n距交易 after the sale: {duration(max(0, up - lt))}")  # fmt: skip
    if d is not None:
        out["row"] = d.txn_time
        out["row_ok"] = d.check_flag in ("Y", "L")
        flag = _FLAG.get(d.check_flag)
        if flag is None:
            flag = _FLAG[d.check_flag] = f"{d.check_flag} {name(words.SETTLE_FLAG, d.check_flag)}"
        out["row_tip"] = (
            f"结算行 settlement row: 交易时间 transaction time {beijing_text(d.txn_time)}\n"
            f"清算日 settle date {d.settle_date} · 标志 flag {flag}\n"
            f"净额 net ¥{fen_to_yuan(d.settle_amt)} · 手续费 fee ¥{fen_to_yuan(d.fee)}"
        )
    return out


# What a transaction's tip says of its codes, made once per combination of them.
_FLAG: dict[str, str] = {}
_SAID: dict[tuple[str, str, str, bool, str | None, str], tuple[str, str]] = {}


def _said(
    typ: str, status: str, cause: str, net: bool, state: str | None, data: str
) -> tuple[str, str]:
    """The name of the sale's type, and the tip's lines after its trace and amount."""
    lines = [f"到账 money: {name(words.STATUS, status)}"]
    if cause:
        because = f"原因 cause: {name(words.CAUSE, cause)}"
        lines.append(because + (" · 网络原因 network-caused" if net else ""))
    if state is not None:
        lines.append(f"终端状态 on the terminal: {name(words.RECEIPT_STATE, state)}")
    if data != "complete":
        lines.append(f"终端记录 record: {name(words.DATA, data)}")
    return name(words.TXN_TYPE, typ), "\n".join(lines)


def device(dev: str, findings: list[Finding], line: Timeline | None, as_of: int,
           missing_fen: int) -> dict[str, Any]:  # fmt: skip
    t0, t1 = span(findings, as_of)
    bands, outside = outages(line, t0, t1, as_of)
    txns = []
    for f in sorted(findings, key=lambda f: _when(f) or 0):
        t = transaction(f, f.cause in NETWORK_CAUSES)
        if t is not None:
            txns.append(t)
    net = sum(1 for t in txns if t["net"])
    head = [
        f"设备 device {dev}",
        f"商户 merchant {findings[0].mid}",
        f"终端 terminal {findings[0].tid}",
        f"{stamp(t0)} – {stamp(t1)[11:] if stamp(t0)[:10] == stamp(t1)[:10] else stamp(t1)}"
        " 北京时间 Beijing time",
        f"未到账 missing ¥{fen_to_yuan(missing_fen)}",
        f"网络原因 network-caused: {net} 笔 sales",
    ]  # fmt: skip
    if outside:
        head.append(f"本时段外另有 {outside} 次断网 {outside} more outages outside this span")
    return {
        "dev": dev, "head": head, "t0": t0, "t1": t1, "ticks": ticks(t0, t1),
        "outages": bands, "signal": signal(line, t0, t1), "txns": txns,
    }  # fmt: skip
