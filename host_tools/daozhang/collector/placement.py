"""Placing records in time when the device's clock was unknown (`t = 0`).

DESIGN §1.3: a record with `t = 0` is placed from the same boot's uptime (`up`, ms) and the
nearest record with a known time. The reference is taken from the same batch when it has one,
else from the latest known-time record of that (dev, epoch) kept in `ack_state`. Records that
still cannot be placed keep `placed_t` NULL and are counted; when a later batch brings a
reference for their boot (typically the `clock` record journalled after the first ack), they
are placed then, in every table that carries `placed_t`.
"""

from __future__ import annotations

from daozhang.collector.accounting import AckState
from daozhang.collector.validate import Record
from daozhang.store import Transaction


def _references(records: list[Record]) -> dict[int, list[tuple[int, int]]]:
    refs: dict[int, list[tuple[int, int]]] = {}
    for r in records:
        if r.t > 0:
            refs.setdefault(r.boot, []).append((r.up, r.t))
    return refs


def place(state: AckState, records: list[Record]) -> list[int | None]:
    """placed_t for each record; updates the state's reference and unplaced count."""
    refs = _references(records)
    placed: list[int | None] = []
    for r in records:
        if r.t > 0:
            placed.append(r.t)
            continue
        candidates = refs.get(r.boot)
        if candidates:
            ref_up, ref_t = min(candidates, key=lambda c: abs(c[0] - r.up))
            placed.append(ref_t + (r.up - ref_up) // 1000)
        elif state.ref_boot == r.boot and state.ref_t is not None and state.ref_up is not None:
            placed.append(state.ref_t + (r.up - state.ref_up) // 1000)
        else:
            placed.append(None)
            state.unplaced += 1
    latest = max((r for r in records if r.t > 0), key=lambda r: r.seq, default=None)
    if latest is not None:
        state.ref_boot, state.ref_t, state.ref_up = latest.boot, latest.t, latest.up
    return placed


def backfill(tx: Transaction, state: AckState, records: list[Record]) -> None:
    """Place earlier unplaced records of the boots this batch brings a reference for."""
    if state.unplaced <= 0:
        return
    refs = _references(records)
    if not refs:
        return
    key = (state.dev, state.epoch)
    for boot, candidates in refs.items():
        # The unplaced records came before the clock was known: the earliest reference is
        # the nearest one.
        ref_up, ref_t = min(candidates)
        tx.execute(
            "UPDATE records SET placed_t = ? + (up - ?) / 1000"
            " WHERE dev = ? AND epoch = ? AND boot = ? AND placed_t IS NULL",
            (ref_t, ref_up, *key, boot),
        )
    for table in ("receipts", "diag_events"):
        tx.execute(
            f"UPDATE {table} SET placed_t = (SELECT r.placed_t FROM records r"
            f" WHERE r.dev = {table}.dev AND r.epoch = {table}.epoch AND r.seq = {table}.seq)"
            f" WHERE dev = ? AND epoch = ? AND placed_t IS NULL",
            key,
        )
    (count,) = tx.execute(
        "SELECT COUNT(*) FROM records WHERE dev = ? AND epoch = ? AND placed_t IS NULL", key
    )[0]
    state.unplaced = int(count)
