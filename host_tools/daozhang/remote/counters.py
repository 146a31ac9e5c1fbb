"""Per-device command counters in the store, and the keys commands are signed with.

The keys are the collector's key store (`devices.hmac_key`, the key each device signs its
batches with); this module reads that column and owns `remote_counters` (tables.py)."""

from __future__ import annotations

import time

from daozhang import contract
from daozhang.errors import StoreError
from daozhang.store import Store


def device_keys(store: Store, devs: list[str]) -> dict[str, bytes | None]:
    """Each device's key (None: registered without one). Unknown devices are refused."""
    keys: dict[str, bytes | None] = {}
    with store.transaction() as tx:
        for dev in devs:
            rows = tx.execute("SELECT hmac_key FROM devices WHERE dev = ?", (dev,))
            if not rows:
                raise StoreError(f"no device {dev!r} in the store (`daozhang device add` it)")
            keys[dev] = bytes(rows[0][0]) if rows[0][0] is not None else None
    return keys


def reserve(store: Store, devs: list[str]) -> dict[str, int]:
    """The next counter of each device, taken in one transaction (never given out twice)."""
    now = time.time()
    taken: dict[str, int] = {}
    with store.transaction() as tx:
        for dev in devs:
            rows = tx.execute("SELECT last_n FROM remote_counters WHERE dev = ?", (dev,))
            n = int(rows[0][0]) + 1 if rows else 1
            if n > contract.COMMAND_MAX_N:
                raise StoreError(f"{dev}: the command counter is used up")
            if rows:
                tx.execute(
                    "UPDATE remote_counters SET last_n = ?, updated_at = ? WHERE dev = ?",
                    (n, now, dev),
                )
            else:
                tx.execute(
                    "INSERT INTO remote_counters (dev, last_n, updated_at) VALUES (?, ?, ?)",
                    (dev, n, now),
                )
            taken[dev] = n
    return taken


def catch_up(store: Store, dev: str, seen: int) -> None:
    """Move `dev`'s counter up to `seen` (a verified `replay` answer: the device ran commands
    this store does not know of, e.g. after the store was restored from a backup)."""
    with store.transaction() as tx:
        tx.execute(
            "UPDATE remote_counters SET last_n = ?, updated_at = ? WHERE dev = ? AND last_n < ?",
            (min(seen, contract.COMMAND_MAX_N), time.time(), dev, seen),
        )
