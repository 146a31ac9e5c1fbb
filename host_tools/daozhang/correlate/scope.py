"""Classify a few transactions without reading the whole store (`daozhang lookup`).

`analyse` (engine.py) reads every table once, because `acquirer_side` compares merchants:
23 s at a million receipts, for one caller on the phone. `analyse_scoped` reads only what the
rules look at for the transactions asked about, and gives them the same findings:

- the receipts (by natural key) with their RRN-joined detail rows, and the receipts the rules
  look across to: voids naming them (`otrc`/`orrn`), completions of a pre-authorisation, an
  approved re-swipe after a no-response;
- detail rows no receipt claims (asked for by file and line), and those a receipt without an
  RRN match falls back to (natural key and amount);
- their payouts, their merchants, the imported files, and each device's timeline;
- for a transaction that is due, in an imported file, and has no row or payout: the other
  transactions of its acquirer-day, read by set queries (acquirer_day.py), because whether
  "many healthy merchants are unpaid" is an acquirer's bad day is counted across merchants.

Each kind of related row is read for all the asked transactions at once, a statement per 250
of them, then handed to each in the order the rules meet them: a device's month is hundreds
of sales, and a round trip per sale and kind was half or more of PostgreSQL's 30-day device
page (513 ms, now 127-268 ms at 10,000 devices: bench/README.md).

Payout findings come with the transactions they hold. Tested against the whole-store
`analyse` field by field (tests/lookup/test_scoped_equals_whole.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from daozhang.collector.quarantine_read import refused_receipts
from daozhang.correlate.acquirer_day import acquirer_day, members
from daozhang.correlate.classify import Context, Finding, classify
from daozhang.correlate.data import (
    _D_COLS,
    _MATCHED_SQL,
    _N_R,
    _R_COLS,
    Data,
    Detail,
    Receipt,
    ReceiptKey,
    RowId,
    Timeline,
    _files,
    _timelines,
    latest_device,
    load_merchants,
    load_notices,
    payouts_named,
    receipt_key,
)
from daozhang.store import Store, Transaction


@dataclass
class Scoped:
    ctx: Context
    data: Data
    findings: list[Finding]  # the transactions asked for, then their payouts


def analyse_scoped(
    store: Store,
    as_of: float | None,
    keys: Sequence[ReceiptKey] = (),
    rows: Sequence[RowId] = (),
    policy_file: Path | None = None,
    calendar_file: Path | None = None,
) -> Scoped:
    ctx = Context.of(as_of, policy_file, calendar_file)
    with store.snapshot() as tx:
        data = load_scoped(tx, keys, rows, ctx.as_of)
        for acquirer, day in _acquirer_days(data, ctx):
            data.healthy_by_day[(acquirer, day)] = acquirer_day(tx, ctx, acquirer, day, data)
    refused_keys = {(d.mid, d.rrn) for d in data.detail if d.rrn}
    if refused_keys:
        for refusal, body in refused_receipts(store):
            key = (body.get("mid"), body.get("rrn"))
            if key in refused_keys:
                data.refused.setdefault((str(key[0]), str(key[1])), refusal)
    findings = classify(data, ctx)
    wanted_keys, wanted_rows = set(keys), set(rows)
    out = [f for f in findings if f.kind == "transaction" and _asked(f, wanted_keys, wanted_rows)]
    payout_ids = {f.payout_id for f in out if f.payout_id}
    out += [f for f in findings if f.kind == "payout" and f.payout_id in payout_ids]
    return Scoped(ctx, data, out)


def _asked(f: Finding, keys: set[ReceiptKey], rows: set[RowId]) -> bool:
    if f.receipt is not None:
        return receipt_key(f.receipt) in keys
    return f.row is not None and (f.row.file_id, f.row.line) in rows


def _receipt_key(row: Sequence[Any]) -> tuple[Any, ...]:
    return receipt_key(Receipt._make(row[:_N_R]))


def _undone_key(row: Sequence[Any]) -> tuple[Any, ...]:
    r = Receipt._make(row[:_N_R])
    return (r.mid, r.tid, r.otrc)


def _named_rrn(row: Sequence[Any]) -> tuple[Any, ...]:
    return (Receipt._make(row[:_N_R]).orrn,)


def _detail_orrn(row: Sequence[Any]) -> tuple[Any, ...]:
    return (Detail._make(row).orrn,)


def _detail_key(row: Sequence[Any]) -> tuple[Any, ...]:
    d = Detail._make(row)
    return (d.mid, d.tid, d.bat, d.trc)


_CHUNK = 250  # keys per statement: well inside either engine's limit on parameters


def _grouped(
    tx: Transaction,
    select: str,
    source: str,
    columns: Sequence[str],
    wanted: Sequence[Sequence[Any]],
    key: Callable[[Sequence[Any]], tuple[Any, ...]],
    tail: str = "",
) -> dict[tuple[Any, ...], list[Any]]:
    """`SELECT select FROM source` for the rows whose `columns` are one of the `wanted`
    values (then `tail`), grouped by `key` of each row, each group in the statement's order.

    The values are a VALUES list joined first (CROSS JOIN: SQLite keeps it the outer loop),
    one index probe each: SQLite scans the table for `(a, b) IN (VALUES ...)`."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    one = f"({', '.join('?' for _ in columns)})"
    on = " AND ".join(f"{c} = k.column{i}" for i, c in enumerate(columns, 1))
    for at in range(0, len(wanted), _CHUNK):
        chunk = wanted[at : at + _CHUNK]
        sql = (
            f"SELECT {select} FROM (VALUES {', '.join(one for _ in chunk)}) k"
            f" CROSS JOIN {source} AND {on}{tail}"
        )
        for row in tx.execute(sql, [value for values in chunk for value in values]):
            out.setdefault(key(row), []).append(row)
    return out


_MATCHED = f"{_R_COLS}, {_D_COLS}"
_RECEIPTS = "receipts r LEFT JOIN settle_detail d ON d.rrn = r.rrn AND d.mid = r.mid WHERE"
_DETAIL = "settle_detail d WHERE"


def load_scoped(
    tx: Transaction, keys: Sequence[ReceiptKey], rows: Sequence[RowId], as_of: int
) -> Data:
    """What classify reads about these receipts and unclaimed detail rows (module doc)."""
    receipts: list[Receipt] = []
    matched: list[Detail | None] = []
    seen: set[ReceiptKey] = set()

    def take(result: Iterable[Any]) -> None:
        for row in result:
            r = Receipt._make(row[:_N_R])
            if receipt_key(r) in seen:
                continue  # a second detail row with this RRN: the first match wins
            seen.add(receipt_key(r))
            receipts.append(r)
            matched.append(None if row[_N_R] is None else Detail._make(row[_N_R:]))

    # Each kind of row is read for all the asked receipts at once (a few set queries, not
    # five round trips per sale: a device's month is hundreds of sales), then handed out per
    # receipt in the order the rules met them one by one.
    by_key = _grouped(tx, _MATCHED, _RECEIPTS + " 1 = 1", ("r.mid", "r.tid", "r.bat", "r.trc"),
                      list(dict.fromkeys(keys)), _receipt_key)  # fmt: skip
    for key in keys:
        take(by_key.pop(tuple(key), ()))
    targets = list(zip(receipts, matched, strict=True))
    detail: list[Detail] = []
    seen_rows: set[RowId] = set()

    def add_detail(result: Iterable[Any]) -> None:
        for row in result:
            d = Detail._make(row)
            if (d.file_id, d.line) not in seen_rows:
                seen_rows.add((d.file_id, d.line))
                detail.append(d)

    rrns = sorted({(r.rrn,) for r, _ in targets if r.rrn})
    undoing = _grouped(
        tx, _MATCHED, _RECEIPTS + " r.otrc IS NOT NULL", ("r.mid", "r.tid", "r.otrc"),
        sorted({(r.mid, r.tid, r.trc) for r, _ in targets}), _undone_key,
    )  # fmt: skip
    naming = _grouped(tx, _MATCHED, _RECEIPTS + " r.orrn IS NOT NULL", ("r.orrn",), rrns,
                      _named_rrn)  # fmt: skip
    completing = _grouped(
        tx, _D_COLS, _DETAIL + " d.orrn <> '' AND d.typ IN ('preauth_done', 'preauth_void')",
        ("d.orrn",), rrns, _detail_orrn, " ORDER BY d.file_id, d.line",
    )  # fmt: skip
    # Through (tid, trc), as key_rows_sql says why (settle v7 has no natural-key index).
    by_trace = " INDEXED BY settle_detail_trace" if tx.dialect == "sqlite" else ""
    fallback = _grouped(
        tx, _D_COLS, f"settle_detail d{by_trace} WHERE NOT EXISTS (SELECT 1 FROM receipts r"
        " WHERE r.rrn = d.rrn AND r.mid = d.mid)", ("d.mid", "d.tid", "d.bat", "d.trc"),
        sorted({receipt_key(r) for r, d in targets if d is None}), _detail_key,
        " ORDER BY d.file_id, d.line",
    )  # fmt: skip
    for r, d in targets:
        # What the index looks across to: voids and completions naming this one ...
        take(undoing.get((r.mid, r.tid, r.trc), ()))
        if r.rrn:
            take(naming.get((r.rrn,), ()))
            add_detail(completing.get((r.rrn,), ()))
        # ... an approved re-swipe of the same card and amount after a no-response ...
        if r.st == "no_response" and r.pan and r.lt is not None:
            take(tx.execute(
                _MATCHED_SQL + " WHERE r.mid = ? AND r.lt > ? AND r.lt <= ? AND r.tid = ?"
                " AND r.pan = ? AND r.amt = ?",
                (r.mid, r.lt, r.lt + 900, r.tid, r.pan, r.amt),
            ))  # fmt: skip
        # ... and, without an RRN match, the unclaimed rows of its natural key.
        if d is None:
            add_detail(fallback.get(receipt_key(r), ()))
    for file_id, line in rows:
        add_detail(
            tx.execute(
                f"SELECT {_D_COLS} FROM settle_detail d WHERE d.file_id = ? AND d.line = ?",
                (file_id, line),
            )
        )
    all_detail = [d for d in matched if d is not None] + detail
    payouts = payouts_named(tx, {d.payout_id for d in all_detail if d.payout_id})
    merchants = load_merchants(tx)
    detail_files, payout_files = _files(tx)
    terminal_dev: dict[tuple[str, str], str] = {}
    # The terminals of unclaimed rows, and every terminal the asked devices reported (the
    # registry check names a device's correctly set-up terminal): each its latest device.
    wanted = {(d.mid, d.tid) for d in detail}
    for dev in sorted({r.dev for r, _ in targets}):
        wanted |= {
            (str(a), str(b))
            for a, b in tx.execute("SELECT mid, tid FROM device_terminals WHERE dev = ?", (dev,))
        }
    for mid, tid in sorted(wanted):
        if (latest := latest_device(tx, mid, tid)) is not None:
            terminal_dev[(mid, tid)] = latest
    timelines: dict[str, Timeline] = {}
    devices = {r.dev for r, _ in targets} | {terminal_dev.get((d.mid, d.tid), "") for d in detail}
    for dev in sorted(devices - {""}):
        timelines.update(_timelines(tx, dev, as_of))
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
        notices=load_notices(tx),
    )


def _acquirer_days(data: Data, ctx: Context) -> set[tuple[str, date | None]]:
    return {(f.acquirer, f.expected_date) for f in members(data, ctx)}
