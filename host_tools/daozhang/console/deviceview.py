"""One device's page: its heartbeats and outages over a window in event time, its reboots and
firmware changes, its sales captured / uploaded / settled, what the collector refused from it,
and what correlation finds about its sales in the window.

The timeline is correlation's own (`Timeline`: heartbeats placed by the terminal's clock,
outages from `link_down` / `link_up`, boot records), so the page and the findings can never
disagree about when the device was down or restarted. The findings are the whole-store
run's for this device's sales in the window, classified without reading the whole store
(`correlate.device.analyse_device`). The quarantine rows are host time (when they were
refused).
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass

from daozhang.collector.quarantine_read import Refusal, list_refusals
from daozhang.console.reading import Reading
from daozhang.console.words import OTA_STEP, beijing, duration, yuan
from daozhang.correlate.classify import Finding
from daozhang.correlate.data import Timeline
from daozhang.correlate.device import analyse_device
from daozhang.correlate.render import explain
from daozhang.radio import strength_dbm
from daozhang.store import Store
from daozhang.words import BOOT_CAUSE, CAUSE, DATA, STAGE, STATUS, name

# Range name -> (span, bucket), both in seconds.
RANGES: dict[str, tuple[int, int]] = {
    "24h": (86_400, 3_600),
    "7d": (7 * 86_400, 6 * 3_600),
    "30d": (30 * 86_400, 86_400),
}


@dataclass(frozen=True)
class Bucket:
    start: str
    beats: int
    max_unsent: str
    reconnects: int
    down_s: int  # seconds of outage inside the bucket
    down_share: float  # of the bucket, 0..1
    weakest: str  # the weakest signal reading in dBm
    reboots: int
    firmware: str  # "1.4.1 → 1.4.2" when the version changed inside the bucket
    sold: int  # sales of the bucket (by the terminal's clock) the host or the acquirer has
    uploaded: int  # of those, the receipts the collector stored
    settled: int  # of those, paid in full


@dataclass(frozen=True)
class ChangeRow:
    """A reboot, a firmware change or an update step, newest first on the page."""

    t: int
    when: str
    kind: str  # reboot firmware ota
    what: str
    detail: str
    mark: str = ""  # what the history's bucket says of it: the versions of a firmware change


@dataclass(frozen=True)
class OutageRow:
    start: str
    end: str
    length: str
    stage: str
    stage_code: str
    why: str


@dataclass(frozen=True)
class FindingRow:
    when: str
    amount: str
    status: str
    cause: str
    data: str
    rrn: str
    explain_zh: str
    explain_en: str


@dataclass(frozen=True)
class DeviceView:
    dev: str
    range: str
    since: str
    buckets: list[Bucket]
    outages: list[OutageRow]
    refusals: list[Refusal]
    findings: list[FindingRow]
    changes: list[ChangeRow]


def _changes(store: Store, dev: str, line: Timeline, lo: int, hi: int) -> list[ChangeRow]:
    """Reboots (boot records, or a heartbeat whose boot counter moved on), firmware changes
    (the version the heartbeats name) and the update's own steps (`ota` diagnostics)."""
    out = []
    for r in line.reboots_near(lo, 0, hi - lo):
        how = (
            "终端开机记录 the terminal's boot record"
            if r.exact
            else "心跳的启动计数变化，不晚于此时 the heartbeats' boot counter moved, by this time"
        )
        out.append(ChangeRow(r.t, beijing(r.t, seconds=True), "reboot",
                             f"重启 restart: {name(BOOT_CAUSE, r.cause)}", how))  # fmt: skip
    for c in line.firmware_near(lo, 0, hi - lo):
        between = f"{beijing(c.after, seconds=True)} .. {beijing(c.t, seconds=True)}"
        versions = f"{c.old} → {c.new}"
        out.append(ChangeRow(c.t, beijing(c.t, seconds=True), "firmware",
                             f"固件 firmware {versions}",
                             f"两次心跳之间 between heartbeats {between}", versions))  # fmt: skip
    for t, body_json in store.query(
        "SELECT COALESCE(placed_t, t), body_json FROM diag_events WHERE ev = 'ota'"
        " AND dev = ? AND COALESCE(placed_t, t) BETWEEN ? AND ? ORDER BY epoch, seq",
        (dev, lo, hi),
    ):
        body = json.loads(body_json)
        step = str(body.get("st", "?"))
        detail = " ".join(str(body[k]) for k in ("ver", "why") if body.get(k))
        out.append(ChangeRow(int(t), beijing(int(t), seconds=True), "ota",
                             f"升级 update: {name(OTA_STEP, step)}", detail))  # fmt: skip
    out.sort(key=lambda c: c.t, reverse=True)
    return out


def _buckets(
    line: Timeline,
    lo: int,
    hi: int,
    size: int,
    changes: list[ChangeRow],
    findings: list[Finding],
) -> list[Bucket]:
    out = []
    # Heartbeats and signal readings are in time order: each bucket is a slice (thousands of
    # heartbeats over 30 days, 30 buckets).
    beat_t = [b.t for b in line.beats]
    for start in range(lo, hi, size):
        end = start + size
        beats = line.beats[bisect_left(beat_t, start) : bisect_left(beat_t, end)]
        down = sum(
            max(0, min(end, o.end if o.end is not None else hi) - max(start, o.start))
            for o in line.outages
        )
        first, last = bisect_left(line.signal_t, start), bisect_left(line.signal_t, end)
        readings = [
            dbm for sig in line.signal[first:last] if (dbm := strength_dbm(sig)) is not None
        ]
        unsent = [b.jrec for b in beats if b.jrec is not None]
        here = [c for c in changes if start <= c.t < end]
        sales = [f for f in findings if f.lt is not None and start <= f.lt < end]
        out.append(
            Bucket(
                start=beijing(start),
                beats=len(beats),
                max_unsent=str(max(unsent)) if unsent else "-",
                reconnects=sum(b.recon or 0 for b in beats),
                down_s=down,
                down_share=min(1.0, down / size),
                weakest=f"{min(readings)} dBm" if readings else "-",
                reboots=sum(c.kind == "reboot" for c in here),
                firmware=", ".join(c.mark for c in here if c.kind == "firmware"),
                sold=len(sales),
                uploaded=sum(f.receipt is not None for f in sales),
                settled=sum(f.status == "settled" for f in sales),
            )
        )
    return out


def device_view(store: Store, dev: str, now: float, range_name: str) -> DeviceView:
    span, bucket = RANGES[range_name]
    hi = int(now)
    # Buckets on whole bucket boundaries, so that a refresh does not shift every row.
    lo = (hi - span) // bucket * bucket
    seen = analyse_device(Reading(store), dev, lo, hi, hi)
    line = seen.timeline
    changes = _changes(store, dev, line, lo, hi)
    outages = [
        OutageRow(
            start=beijing(o.start, seconds=True),
            end=beijing(o.end, seconds=True) if o.end is not None else "仍中断 still down",
            length=duration((o.end if o.end is not None else hi) - o.start),
            stage=name(STAGE, o.stage),
            stage_code=o.stage,
            why=o.why,
        )
        for o in line.outages
        if o.start < hi and (o.end is None or o.end >= lo)
    ]
    findings = [
        FindingRow(
            when=beijing(f.lt),
            amount=yuan(f.amount_fen),
            status=name(STATUS, f.status),
            cause=name(CAUSE, f.cause),
            data=name(DATA, f.data),
            rrn=f.rrn or "-",
            explain_zh=text["zh"],
            explain_en=text["en"],
        )
        for f in seen.findings
        for text in (explain(f),)
    ]
    return DeviceView(
        dev=dev,
        range=range_name,
        since=beijing(lo),
        buckets=list(reversed(_buckets(line, lo, hi, bucket, changes, seen.findings))),
        outages=list(reversed(outages)),
        refusals=list_refusals(store, dev=dev, since=lo, limit=100),
        findings=findings,
        changes=changes,
    )
