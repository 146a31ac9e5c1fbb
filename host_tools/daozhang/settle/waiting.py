"""Which receipts may still wait on their acquirer's payout, kept as files are imported.

`receipts.waits` (core migration v10) is 1 for a receipt that may be waiting for its money,
0 for one that cannot be: the collector sets it from the receipt alone (`contract.may_wait`:
a declined sale never waits), and this module lowers it to 0 once the acquirer's rows prove
the money paid: the receipt has rows (by RRN and merchant, as correlation joins them) and
every one is paid (its payout imported) or marked 'B' (not for settlement). Each import also
lowers the receipts of the days the file covers that the collector stored after an earlier
import (a journal drained late), and raises a receipt back to its own answer when a new,
unpaid row arrives for it. `settle_detail.paid` is 1 once the row's payout is imported.

A receipt the terminal undid (reversed, no answer) waits only on a row saying the acquirer
settled it anyway ('Y'/'L') that is not paid yet. A 1 that could be 0 costs the acquirer-day
read one row; a 0 is written only when it is sure, so the lookup that reads only the 1s
(correlate/acquirer_day.py) answers as the whole-store run does. On PostgreSQL imports take
turns (an advisory lock): two importing at once could each prove a receipt paid from rows the
other is still adding.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from daozhang.contract import MONEY_STATES, UNDONE_STATES, may_wait_sql
from daozhang.store import Transaction
from daozhang.units import BEIJING

# A sale is settled at most this many days after it (T1 over the longest holiday, as
# correlate/acquirer_day.py's _MAX_LAG_DAYS), and a file's rows name sales of those days.
_LAG_DAYS = 17
IMPORT_LOCK = 7_427_027  # pg_advisory_xact_lock: settlement imports take turns


def _listed(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_OWN = may_wait_sql("receipts.typ", "receipts.st", "receipts.rrn")
_ROWS = "SELECT 1 FROM settle_detail d WHERE d.rrn = receipts.rrn AND d.mid = receipts.mid"
# A sale on the money path waits while it has no row, or a row neither paid nor 'B'.
_PAID = (
    f"receipts.st IN {_listed(MONEY_STATES)} AND EXISTS ({_ROWS})"
    f" AND NOT EXISTS ({_ROWS} AND d.check_flag <> 'B' AND d.paid = 0)"
)
# One the terminal undid waits only on a row that says the acquirer settled it anyway ('Y' or
# 'L') and is not paid: none yet, none to wait for (a later one raises it, after_import).
_UNDONE_UNCLAIMED = (
    f"receipts.st IN {_listed(UNDONE_STATES)}"
    f" AND NOT EXISTS ({_ROWS} AND d.check_flag IN ('Y', 'L') AND d.paid = 0)"
)
LOWER_WAITS = (
    f"UPDATE receipts SET waits = 0 WHERE waits = 1"
    f" AND ({_OWN} = 0 OR ({_PAID}) OR ({_UNDONE_UNCLAIMED}))"
)


def after_import(
    tx: Transaction,
    file_id: int,
    kind: str,
    date_from: str | None,
    date_to: str | None,
    rows: int = 0,
    payout_ids: set[str] | None = None,
) -> None:
    """Keep `paid` and `waits` for a file just imported, in its transaction. `payout_ids`:
    every payout id the file's rows name, when the importer kept them (None: not known)."""
    if kind == "detail":
        # Rows are paid once their payout is imported. When none of the file's payouts is
        # (a detail file before its payout file, a first backfill), the file's rows need no
        # visit: asked of the payouts' index, not of every row (2 s for a 1 GB file).
        if payout_ids is None or _any_payout(tx, payout_ids):
            tx.execute(
                "UPDATE settle_detail SET paid = 1 WHERE file_id = ? AND EXISTS"
                " (SELECT 1 FROM payouts p WHERE p.payout_id = settle_detail.payout_id)",
                (file_id,),
            )
        # A new row still unpaid: its receipt may wait again, as far as its own fields say.
        # The smaller side drives: the file's rows (their distinct RRNs, a sort of the file),
        # or, when the store holds fewer receipts than the file rows (a first backfill of
        # acquirer files: 7 s of sorting for a 1 GB file and no receipt), each receipt
        # probing the file's rows through the RRN index.
        if _receipts_drive(tx, rows):
            tx.execute(
                f"UPDATE receipts SET waits = {_OWN} WHERE receipts.waits = 0 AND EXISTS"
                f" ({_ROWS} AND d.file_id = ? AND d.check_flag <> 'B' AND d.paid = 0)",
                (file_id,),
            )
        else:
            tx.execute(
                f"UPDATE receipts SET waits = {_OWN} FROM (SELECT DISTINCT rrn, mid FROM"
                " settle_detail WHERE file_id = ? AND check_flag <> 'B' AND paid = 0) f"
                " WHERE receipts.rrn = f.rrn AND receipts.mid = f.mid AND receipts.waits = 0",
                (file_id,),
            )
    elif kind == "payout":
        tx.execute(
            "UPDATE settle_detail SET paid = 1 WHERE paid = 0 AND payout_id IN"
            " (SELECT payout_id FROM payouts WHERE file_id = ?)",
            (file_id,),
        )
    else:
        return
    if date_from is None or date_to is None:
        return
    lo = _midnight(date.fromisoformat(date_from) - timedelta(days=_LAG_DAYS))
    hi = _midnight(date.fromisoformat(date_to) + timedelta(days=1))
    tx.execute(f"{LOWER_WAITS} AND lt >= ? AND lt < ?", (lo, hi))
    tx.execute(f"{LOWER_WAITS} AND lt IS NULL AND t >= ? AND t < ?", (lo, hi))


def _any_payout(tx: Transaction, payout_ids: set[str]) -> bool:
    ordered = sorted(payout_ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        marks = ",".join("?" * len(chunk))
        if tx.execute(f"SELECT 1 FROM payouts WHERE payout_id IN ({marks}) LIMIT 1", chunk):
            return True
    return False


def _receipts_drive(tx: Transaction, rows: int) -> bool:
    """Fewer receipts stored than the file has rows (SQLite: the largest rowid bounds them,
    read from the table's B-tree alone)."""
    if tx.dialect != "sqlite":
        return False
    held = tx.execute("SELECT MAX(rowid) FROM receipts")[0][0]
    return int(held or 0) < rows


def refresh_all(tx: Transaction) -> None:
    """Every row's `paid` and every receipt's `waits` from what is stored (a migration, a
    store filled by other means than the importer: bench/lookup_bench.py)."""
    tx.execute(
        "UPDATE settle_detail SET paid = 1 WHERE paid = 0 AND EXISTS"
        " (SELECT 1 FROM payouts p WHERE p.payout_id = settle_detail.payout_id)"
    )
    tx.execute(LOWER_WAITS)


def _midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=BEIJING).timestamp())
