"""One device over a window without classifying the whole store (the console's device page).

`analyse_device` finds the transactions the whole-store run would give this device
(`analyse(device=dev)`: findings whose `dev` is it) with a sale time inside [lo, hi], and
classifies only those through `analyse_scoped`, so their findings are the whole store's
(tests/lookup/test_device_scoped_equals_whole.py holds them field by field):

- its receipts: for each terminal it served (`device_terminals`), that merchant's receipts in
  the window (index `(mid, lt)`) of that terminal and this device;
- settlement rows no receipt claims (search.py's rule, which is classify's) of the terminals
  whose latest device it is (classify names a row's device so), in the window by the row's
  time (index `(mid, txn_time)`);
- rows of a terminal no device served whose merchant and RRN name a receipt the collector
  refused from this device (classify names the refusing device then).

Cost: the device's terminals' index ranges over the window, `analyse_scoped`'s set queries
over those transactions (a statement per kind of related row and 250 sales, not one per
sale), and the device's timeline (its link and signal events, 40 days of heartbeats);
a sale waiting on its acquirer also reads that acquirer-day (acquirer_day.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daozhang.collector.quarantine_read import refused_receipts
from daozhang.correlate.classify import Finding
from daozhang.correlate.data import (
    Receipt,
    ReceiptKey,
    RowId,
    Timeline,
    _timelines,
    latest_device,
)
from daozhang.correlate.scope import Scoped, analyse_scoped
from daozhang.correlate.search import _UNCLAIMED
from daozhang.store import Store, Transaction


@dataclass
class DeviceScoped:
    timeline: Timeline  # up to the as-of time
    receipts: list[Receipt]  # its receipts sold in the window (the latest state of each)
    findings: list[Finding]  # its transactions sold in the window, latest first
    scoped: Scoped


def analyse_device(
    store: Store,
    dev: str,
    lo: int,
    hi: int,
    as_of: float,
    policy_file: Path | None = None,
    calendar_file: Path | None = None,
) -> DeviceScoped:
    refusing = _refused_by(store, dev)
    with store.snapshot() as tx:
        keys, rows = _asked(tx, dev, lo, hi, refusing)
    scoped = analyse_scoped(store, as_of, keys, rows, policy_file, calendar_file)
    line = scoped.data.timelines.get(dev)
    if line is None:  # no sale of its own in the window: its timeline was not read yet
        with store.snapshot() as tx:
            line = _timelines(tx, dev, int(scoped.ctx.as_of)).get(dev, Timeline())
    wanted = set(keys)
    receipts = [r for r in scoped.data.receipts if (r.mid, r.tid, r.bat, r.trc) in wanted]
    findings = [f for f in scoped.findings if f.kind == "transaction"]
    findings.sort(key=lambda f: f.lt or 0, reverse=True)
    return DeviceScoped(line, receipts, findings, scoped)


def _refused_by(store: Store, dev: str) -> set[tuple[str, str]]:
    """(merchant, RRN) of receipts refused from `dev`: the first refusal of each key decides,
    as the whole-store load keeps it (data._refused)."""
    first: dict[tuple[str, str], str | None] = {}
    for refusal, body in refused_receipts(store):
        mid, rrn = body.get("mid"), body.get("rrn")
        if isinstance(mid, str) and isinstance(rrn, str):
            first.setdefault((mid, rrn), refusal.dev)
    return {key for key, by in first.items() if by == dev}


_ROWS = "SELECT d.file_id, d.line FROM settle_detail d WHERE "


def _asked(
    tx: Transaction, dev: str, lo: int, hi: int, refusing: set[tuple[str, str]]
) -> tuple[list[ReceiptKey], list[RowId]]:
    keys: list[ReceiptKey] = []
    rows: list[RowId] = []
    served = tx.execute("SELECT mid, tid FROM device_terminals WHERE dev = ?", (dev,))
    for mid, tid in sorted((str(m), str(t)) for m, t in served):
        for k in tx.execute(
            "SELECT mid, tid, bat, trc FROM receipts WHERE mid = ? AND lt BETWEEN ? AND ?"
            " AND tid = ? AND dev = ?",
            (mid, lo, hi, tid, dev),
        ):
            keys.append((str(k[0]), str(k[1]), str(k[2]), str(k[3])))
        if latest_device(tx, mid, tid) == dev:
            found = tx.execute(
                _ROWS + "d.mid = ? AND d.txn_time BETWEEN ? AND ? AND d.tid = ?" + _UNCLAIMED,
                (mid, lo, hi, tid),
            )
            rows += [(int(f), int(n)) for f, n in found]
    for mid, rrn in sorted(refusing):
        found = tx.execute(
            _ROWS + "d.mid = ? AND d.rrn = ? AND d.txn_time BETWEEN ? AND ?" + _UNCLAIMED
            + " AND NOT EXISTS (SELECT 1 FROM device_terminals t WHERE t.mid = d.mid"
            " AND t.tid = d.tid)",
            (mid, rrn, lo, hi),
        )  # fmt: skip
        rows += [(int(f), int(n)) for f, n in found]
    return keys, sorted(set(rows))
