"""What the ack may say: per (dev, epoch), the highest contiguous accounted-for seq.

A seq is accounted for once it is stored, quarantined from an authentic batch, or declared
lost in a batch's `gaps` (DESIGN §1.3). `ack_state` keeps `upto` and the highest seq accounted
for (`max_seen`), with the invariant that `upto + 1` is never accounted for after a commit; so a
batch that does not touch `upto + 1` cannot move the ack, and the database is only read back
when it does and older seqs above the hole may now join up.

On PostgreSQL the row is locked (`FOR UPDATE`) before anything of that (dev, epoch) is written,
so two collectors handling the same device serialise on it and each sees the other's commit;
SQLite has a single writer anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from daozhang.store import Transaction

_SCAN_LIMIT = 2000  # rows read per step when joining up older seqs above a hole


@dataclass
class AckState:
    dev: str
    epoch: int
    upto: int
    max_seen: int
    unplaced: int  # records of this epoch whose time could not be placed yet
    ref_boot: int | None  # the latest record with a known device time: the clock reference
    ref_t: int | None
    ref_up: int | None


_SELECT = (
    "SELECT upto, max_seen, unplaced, ref_boot, ref_t, ref_up FROM ack_state"
    " WHERE dev = ? AND epoch = ?"
)


def lock_state(tx: Transaction, dev: str, epoch: int, now: float) -> AckState:
    """The (dev, epoch) state, created at upto 0 (a new epoch's first seq is 1), and locked."""
    select = _SELECT + (" FOR UPDATE" if tx.dialect == "postgresql" else "")
    rows = tx.execute(select, (dev, epoch))
    if not rows:
        tx.execute(
            "INSERT INTO ack_state (dev, epoch, upto, max_seen, unplaced, first_at, updated_at)"
            " VALUES (?, ?, 0, 0, 0, ?, ?) ON CONFLICT (dev, epoch) DO NOTHING",
            (dev, epoch, now, now),
        )
        rows = tx.execute(select, (dev, epoch))
    upto, max_seen, unplaced, ref_boot, ref_t, ref_up = rows[0]
    return AckState(dev, epoch, int(upto), int(max_seen), int(unplaced), ref_boot, ref_t, ref_up)


def save_state(tx: Transaction, state: AckState, now: float) -> None:
    tx.execute(
        "UPDATE ack_state SET upto = ?, max_seen = ?, unplaced = ?, ref_boot = ?, ref_t = ?,"
        " ref_up = ?, updated_at = ? WHERE dev = ? AND epoch = ?",
        (
            state.upto,
            state.max_seen,
            state.unplaced,
            state.ref_boot,
            state.ref_t,
            state.ref_up,
            now,
            state.dev,
            state.epoch,
        ),
    )


def walk(upto: int, ranges: Iterable[tuple[int, int]]) -> int:
    """Extend `upto` through every range that touches or overlaps it, in order."""
    for low, high in sorted(ranges):
        if low > upto + 1:
            break
        upto = max(upto, high)
    return upto


def advance(
    tx: Transaction,
    state: AckState,
    accounted: list[tuple[int, int]],
    before_read: Callable[[], None] | None = None,
) -> None:
    """Move `state.upto` over this batch's accounted ranges, then over older ones it joins.

    `before_read` makes rows still held by the caller visible before the database is read.
    """
    if accounted:
        state.max_seen = max(state.max_seen, *(high for _, high in accounted))
    before = state.upto
    state.upto = walk(state.upto, accounted)
    if state.upto == before:
        return  # upto + 1 was not accounted before this batch and is not now
    if state.upto < state.max_seen and before_read is not None:
        before_read()
    while state.upto < state.max_seen:
        start = state.upto
        args = (state.dev, state.epoch, start, state.max_seen)
        seqs = tx.execute(
            "SELECT seq FROM records WHERE dev = ? AND epoch = ? AND seq > ? AND seq <= ?"
            f" ORDER BY seq LIMIT {_SCAN_LIMIT}",
            args,
        )
        ranges = [(int(s), int(s)) for (s,) in seqs]
        ranges += [
            (int(s), int(s))
            for (s,) in tx.execute(
                "SELECT seq FROM quarantine WHERE dev = ? AND epoch = ? AND seq > ?"
                f" AND seq <= ? ORDER BY seq LIMIT {_SCAN_LIMIT}",
                args,
            )
        ]
        ranges += [
            (int(a), int(b))
            for a, b in tx.execute(
                "SELECT seq_from, seq_to FROM declared_gaps WHERE dev = ? AND epoch = ?"
                " AND seq_to > ?",
                args[:3],
            )
        ]
        upto = walk(start, ranges)
        if upto == start:
            break  # a hole: upto + 1 is not accounted for
        state.upto = upto  # and read on: the limit may have cut the run short


def still_unsent(jrec: int | None, next_seq: int | None, upto: int | None) -> int | None:
    """What is left now of the backlog a heartbeat reported (`jrec` unacked records, the newest
    `next_seq - 1`), given `upto` for the heartbeat's epoch: a heartbeat is up to an interval
    old, and what the collector has accounted for since has arrived, whatever the ack's way
    back. None when no heartbeat said."""
    if jrec is None or next_seq is None or upto is None:
        return jrec
    return max(0, min(int(jrec), int(next_seq) - 1 - int(upto)))
