"""Retention for the collector's timelines: heartbeats, status events and the uploads log.

A device sends a heartbeat every `hb_s` (300 s by default) and adds an `uploads` row per batch,
so 300 devices add some 86,400 heartbeat rows a day; without pruning, disk grows for ever.
Only those three tables age out. The evidence is never pruned: `records`, `receipts`,
`diag_events`, `declared_gaps`, `ack_state` and the quarantine are what correlation and
`lookup` read for transactions months old (a chargeback arrives long after the sale).

What the readers of the pruned tables need, and so what pruning keeps:
- `fleet status` sums each device's heartbeats over the last day: at least one day is kept;
- `fleet status`, the metrics scrape and correlation read each device's latest heartbeat
  (backlog, signal, last seen): it is kept however old, because a terminal silent for a month
  is exactly what support asks about; the same for each device's latest status event.

Rows are deleted by id in chunks, each chunk its own short transaction, so a collector writing
beside the prune (SQLite has one writer) waits at most one chunk for its next commit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from daozhang.errors import UsageError
from daozhang.store import Store

# `fleet status` sums reconnects and sync results over this window, so `prune` keeps at least
# as much (defined here, below both, so that the store's retention rule reads no report).
SUMMED_WINDOW_S = 86_400

DAY_S = 86400.0
MIN_KEEP_DAYS = SUMMED_WINDOW_S / DAY_S  # fleet status sums each device's last day
CHUNK_ROWS = 2000

# (table, keep each device's latest row); every one has `id`, `dev` and `received_at`.
PRUNED_TABLES: tuple[tuple[str, bool], ...] = (
    ("heartbeats", True),
    ("status_events", True),
    ("uploads", False),
)
NEVER_PRUNED = ("records", "receipts", "diag_events", "declared_gaps", "ack_state", "quarantine")


@dataclass(frozen=True)
class TablePruned:
    table: str
    deleted: int  # rows received before the cut and removed (with a dry run: that would be)
    kept_latest: int  # rows received before the cut and kept as their device's latest


@dataclass(frozen=True)
class PruneResult:
    cut: float  # unix time: rows received before it were pruned
    keep_days: float
    dry_run: bool
    tables: list[TablePruned]


def prune(
    store: Store,
    *,
    keep_days: float,
    now: float,
    dry_run: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> PruneResult:
    """Delete timeline rows received more than `keep_days` before `now`."""
    problem = keep_days_problem(keep_days)
    if problem is not None:
        raise UsageError(f"--keep-days {problem}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    cut = now - keep_days * DAY_S
    tables = [
        _prune_table(store, table, keep_latest, cut, dry_run, chunk_rows)
        for table, keep_latest in PRUNED_TABLES
    ]
    return PruneResult(cut=cut, keep_days=keep_days, dry_run=dry_run, tables=tables)


def keep_days_problem(keep_days: float) -> str | None:
    """Why `keep_days` cannot be kept (the command line says it too), or None."""
    if math.isfinite(keep_days) and keep_days >= MIN_KEEP_DAYS:
        return None
    return (
        f"must be at least {MIN_KEEP_DAYS:g} (fleet status sums each device's last day),"
        f" got {keep_days:g}"
    )


def _latest_ids(store: Store, table: str) -> set[int]:
    # "Latest" is the last stored (highest id), as the fleet readers and correlation read it.
    return {int(row[0]) for row in store.query(f"SELECT MAX(id) FROM {table} GROUP BY dev")}


def _prune_table(
    store: Store, table: str, keep_latest: bool, cut: float, dry_run: bool, chunk_rows: int
) -> TablePruned:
    keep = _latest_ids(store, table) if keep_latest else set()
    deleted = kept = 0
    after = 0  # ids start at 1 on both engines
    while True:
        # The walk is a read outside any write transaction: on SQLite it takes no write lock,
        # however far it has to look for the next old row.
        ids = [
            int(row[0])
            for row in store.query(
                f"SELECT id FROM {table} WHERE id > ? AND received_at < ? ORDER BY id LIMIT ?",
                (after, cut, chunk_rows),
            )
        ]
        if not ids:
            break
        after = ids[-1]
        doomed = [i for i in ids if i not in keep]
        kept += len(ids) - len(doomed)
        if dry_run:
            deleted += len(doomed)
        elif doomed:
            deleted += _delete(store, table, doomed)
        if len(ids) < chunk_rows:
            break
    return TablePruned(table=table, deleted=deleted, kept_latest=kept)


def _delete(store: Store, table: str, ids: list[int]) -> int:
    # By the exact ids the walk read (never a range): a row stored meanwhile is never touched.
    with store.transaction() as tx:
        tx.execute(f"DELETE FROM {table} WHERE id IN ({', '.join('?' for _ in ids)})", ids)
        return int(tx.rowcount())
