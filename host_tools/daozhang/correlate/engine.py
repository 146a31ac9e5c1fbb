"""`analyse(store, as_of)`: read once, classify; `record` keeps a run's findings."""

from __future__ import annotations

import gc
import json
import time
from dataclasses import dataclass
from pathlib import Path

from daozhang.correlate.classify import Context, Finding, classify
from daozhang.correlate.data import Data, load
from daozhang.correlate.render import to_dict
from daozhang.settle.calendar import WorkingCalendar
from daozhang.settle.policy import Policies
from daozhang.store import Store


@dataclass
class Result:
    as_of: int
    data: Data
    findings: list[Finding]


def analyse(
    store: Store,
    as_of: float | None = None,
    merchant: str | None = None,
    device: str | None = None,
    policy_file: Path | None = None,
    calendar_file: Path | None = None,
) -> Result:
    """Read the store and classify; the data is kept for reports (timelines)."""
    ctx = Context(
        as_of=int(time.time() if as_of is None else as_of),
        policies=Policies.load(policy_file),
        calendar=WorkingCalendar.load(calendar_file),
    )
    # Millions of small objects that live until the run ends: the cyclic collector would
    # rescan them again and again for nothing (they hold no cycles).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        # Always the whole store: acquirer_side compares merchants, so one merchant's view
        # alone would call an acquirer's bad day "unknown". The filter applies afterwards.
        data = load(store, as_of=ctx.as_of)
        findings = classify(data, ctx)
        if merchant is not None:
            findings = [f for f in findings if f.mid == merchant]
        if device is not None:
            findings = [f for f in findings if f.dev == device]
        return Result(ctx.as_of, data, findings)
    finally:
        if was_enabled:
            gc.enable()


def record(store: Store, as_of: float, findings: list[Finding]) -> int:
    """Write the run's findings to the `findings` table; return the run id."""
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO correlate_runs (as_of, ran_at, n_findings) VALUES (?, ?, ?)",
            (as_of, time.time(), len(findings)),
        )
        run_id = int(tx.execute("SELECT MAX(id) FROM correlate_runs")[0][0])
        tx.executemany(
            "INSERT INTO findings (run_id, n, kind, mid, tid, bat, trc, dev, rrn, payout_id,"
            " status, cause, data, body_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    run_id,
                    n,
                    f.kind,
                    f.mid,
                    f.tid,
                    f.bat,
                    f.trc,
                    f.dev,
                    f.rrn,
                    f.payout_id,
                    f.status,
                    f.cause,
                    f.data,
                    json.dumps(to_dict(f), ensure_ascii=False),
                )
                for n, f in enumerate(findings)
            ),
        )
    return run_id
