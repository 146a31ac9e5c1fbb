"""One device's page: its heartbeats and outages over a window in event time, what the
collector refused from it, and what correlation finds about its sales.

The timeline is correlation's own (`Data.timelines`: heartbeats placed by the terminal's
clock, outages from `link_down` / `link_up`), so the page and the findings can never disagree
about when the device was down. The quarantine rows are host time (when they were refused).
"""

from __future__ import annotations

from dataclasses import dataclass

from daozhang.collector.quarantine_read import Refusal, list_refusals
from daozhang.console.finder import analysed
from daozhang.console.words import beijing, duration, yuan
from daozhang.correlate.data import Timeline
from daozhang.correlate.render import explain
from daozhang.radio import strength_dbm
from daozhang.store import Store
from daozhang.words import CAUSE, DATA, STAGE, STATUS, name

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


def _buckets(line: Timeline, lo: int, hi: int, size: int) -> list[Bucket]:
    out = []
    for start in range(lo, hi, size):
        end = start + size
        beats = [b for b in line.beats if start <= b.t < end]
        down = sum(
            max(0, min(end, o.end if o.end is not None else hi) - max(start, o.start))
            for o in line.outages
        )
        readings = [
            dbm
            for t, sig in zip(line.signal_t, line.signal, strict=True)
            if start <= t < end and (dbm := strength_dbm(sig)) is not None
        ]
        unsent = [b.jrec for b in beats if b.jrec is not None]
        out.append(
            Bucket(
                start=beijing(start),
                beats=len(beats),
                max_unsent=str(max(unsent)) if unsent else "-",
                reconnects=sum(b.recon or 0 for b in beats),
                down_s=down,
                down_share=min(1.0, down / size),
                weakest=f"{min(readings)} dBm" if readings else "-",
            )
        )
    return out


def device_view(store: Store, dev: str, now: float, range_name: str) -> DeviceView:
    span, bucket = RANGES[range_name]
    hi = int(now)
    # Buckets on whole bucket boundaries, so that a refresh does not shift every row.
    lo = (hi - span) // bucket * bucket
    # The whole store is read: correlation's verdicts about this device's sales need every
    # merchant (acquirer_side), exactly as `daozhang lookup` does.
    result = analysed(store, hi, device=dev)
    line = result.data.timelines.get(dev, Timeline())
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
            explain_zh=explain(f)["zh"],
            explain_en=explain(f)["en"],
        )
        for f in sorted(result.findings, key=lambda f: f.lt or 0, reverse=True)
        if f.kind == "transaction"
    ]
    return DeviceView(
        dev=dev,
        range=range_name,
        since=beijing(lo),
        buckets=list(reversed(_buckets(line, lo, hi, bucket))),
        outages=list(reversed(outages)),
        refusals=list_refusals(store, dev=dev, since=lo, limit=100),
        findings=findings,
    )
