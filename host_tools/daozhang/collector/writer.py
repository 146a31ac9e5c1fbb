"""The rows of one transaction, written in a few `executemany` calls instead of many `execute`s.

A group commit covers hundreds of batches; writing each batch's rows as it comes would cost
about ten statements per batch (a round trip each on PostgreSQL). The writer keeps the rows,
the locked `ack_state` of each (dev, epoch) and the device lookups for the whole transaction,
and writes them in `flush()`: before the commit, and before any read that must see them (the
rare read-backs for resends, out-of-order joins and placement).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daozhang.collector.accounting import AckState, lock_state, save_state
from daozhang.collector.keys import DeviceInfo
from daozhang.store import Transaction


class GroupWriter:
    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[Any, ...]]] = {}
        self._states: dict[tuple[str, int], AckState] = {}
        self._state_time: float = 0.0
        self._devices: dict[str, DeviceInfo] = {}
        self._seen: dict[str, float] = {}
        self._terminals: dict[tuple[str, str, str], float] = {}
        self._serving: dict[str, tuple[str, str]] = {}
        # The device each receipt key written in this transaction belongs to (ingest.py reads
        # it before the rows are flushed).
        self.owners: dict[tuple[str, str, str, str], str] = {}

    def add(self, sql: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(sql, []).append(row)

    def add_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.rows.setdefault(sql, []).extend(rows)

    def device(self, tx: Transaction, dev: str) -> DeviceInfo:
        info = self._devices.get(dev)
        if info is None:
            info = self._devices[dev] = read_device(tx.execute, dev)
        return info

    def load_devices(self, tx: Transaction, devs: set[str]) -> None:
        """Read the key store's entries of `devs` in one query (one round trip on PostgreSQL,
        where a query per device cost a fifth of the time to ack a group)."""
        wanted = sorted(devs - self._devices.keys())
        for start in range(0, len(wanted), 500):  # well under SQLite's limit of parameters
            self._devices.update(read_devices(tx.execute, wanted[start : start + 500]))

    @property
    def devices(self) -> dict[str, DeviceInfo]:
        """Every key store entry read in this transaction: current as of its commit."""
        return self._devices

    def state(self, tx: Transaction, dev: str, epoch: int, now: float) -> AckState:
        """The (dev, epoch) accounting row, locked once for the whole transaction."""
        state = self._states.get((dev, epoch))
        if state is None:
            state = self._states[(dev, epoch)] = lock_state(tx, dev, epoch, now)
        self._state_time = max(self._state_time, now)
        return state

    def seen(self, dev: str, now: float, terminals: list[tuple[str, str]]) -> None:
        self._seen[dev] = max(now, self._seen.get(dev, now))
        for mid, tid in terminals:
            self._terminals[(dev, mid, tid)] = now
        if terminals:
            self._serving[dev] = terminals[-1]

    def flush(self, tx: Transaction) -> None:
        for sql, rows in self.rows.items():
            tx.executemany(sql, rows)
        self.rows = {}
        for state in self._states.values():
            save_state(tx, state, self._state_time)
        if self._seen:
            # Sorted: several collectors on PostgreSQL then lock device rows in one order.
            tx.executemany(
                "INSERT INTO devices (dev, first_seen, last_seen) VALUES (?, ?, ?)"
                " ON CONFLICT (dev) DO UPDATE SET first_seen = COALESCE(devices.first_seen,"
                " excluded.first_seen), last_seen = CASE WHEN devices.last_seen IS NULL"
                " OR devices.last_seen < excluded.last_seen THEN excluded.last_seen"
                " ELSE devices.last_seen END",
                [(dev, t, t) for dev, t in sorted(self._seen.items())],
            )
            self._seen = {}
        if self._terminals:
            tx.executemany(
                "INSERT INTO device_terminals (dev, mid, tid, first_seen, last_seen)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (dev, mid, tid) DO UPDATE SET"
                " last_seen = excluded.last_seen",
                [(d, m, t, at, at) for (d, m, t), at in sorted(self._terminals.items())],
            )
            self._terminals = {}
        for dev, (mid, tid) in sorted(self._serving.items()):
            info = self._devices.get(dev)
            if info is None or (info.mid, info.tid) != (mid, tid):
                tx.execute("UPDATE devices SET mid = ?, tid = ? WHERE dev = ?", (mid, tid, dev))
                if info is not None:
                    self._devices[dev] = DeviceInfo(info.key, mid, tid)
        self._serving = {}


Query = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


def read_device(query: Query, dev: str) -> DeviceInfo:
    """The key store's entry for `dev`, through a transaction's or a store's query."""
    return read_devices(query, [dev])[dev]


def read_devices(query: Query, devs: list[str]) -> dict[str, DeviceInfo]:
    """The key store's entries for `devs` (unknown ones too), in one query."""
    if not devs:
        return {}
    marks = ", ".join("?" for _ in devs)
    rows = query(f"SELECT dev, hmac_key, mid, tid FROM devices WHERE dev IN ({marks})", (*devs,))
    found = {
        str(dev): DeviceInfo(bytes(key) if key is not None else None, mid, tid)
        for dev, key, mid, tid in rows
    }
    return {dev: found.get(dev, DeviceInfo(None, None, None)) for dev in devs}
