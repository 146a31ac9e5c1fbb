"""The device registry ("flash" store component) and the one place HMAC keys are kept.

`flash_devices` holds the latest flash of each device id (which board, which port, which
firmware, when, by whom, and how its self-test ended); `flash_history` keeps every flash.
The per-device HMAC key lives in the collector's `devices` table (interface C), which is
where the collector looks it up to check a batch's MAC: `key_for` is the only function that
writes it, through the collector's own `add_device`.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from daozhang.collector.keys import add_device
from daozhang.errors import StoreError
from daozhang.store import Store, Transaction
from daozhang.store.migrate import Migration

HMAC_KEY_BYTES = 32

MIGRATIONS = [
    Migration(
        1,
        "device_registry",
        """
CREATE TABLE flash_devices (
    dev TEXT PRIMARY KEY,
    board TEXT NOT NULL,
    port TEXT NOT NULL,
    fw_version TEXT NOT NULL,
    fw_hash TEXT NOT NULL,
    mpy TEXT NOT NULL,
    flashed_at DOUBLE PRECISION NOT NULL,
    operator TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE TABLE flash_history (
    id {id},
    dev TEXT NOT NULL,
    board TEXT NOT NULL,
    port TEXT NOT NULL,
    fw_version TEXT NOT NULL,
    fw_hash TEXT NOT NULL,
    mpy TEXT NOT NULL,
    flashed_at DOUBLE PRECISION NOT NULL,
    operator TEXT NOT NULL,
    files_written INTEGER NOT NULL,
    files_removed INTEGER NOT NULL,
    result TEXT NOT NULL,
    selftest_json TEXT NOT NULL
);
CREATE INDEX flash_history_dev ON flash_history (dev, flashed_at)
""",
    )
]


@dataclass(frozen=True)
class FlashRecord:
    dev: str
    board: str
    port: str
    fw_version: str
    fw_hash: str
    mpy: str
    operator: str
    files_written: int
    files_removed: int
    result: str  # pass, incomplete, fail
    selftest: list[list[str]]


def device_key(tx: Transaction, dev: str) -> bytes | None:
    rows = tx.execute("SELECT hmac_key FROM devices WHERE dev = ?", (dev,))
    if not rows or rows[0][0] is None:
        return None
    return bytes(rows[0][0])


def key_for(store: Store, dev: str) -> bytes:
    """The device's HMAC key: the registered one, or a new one registered now in the
    collector's key store (before any device gets it, so a key on a device is always known to
    the collector; a concurrent flash of the same id cannot register a second key)."""
    key = registered_key(store, dev)
    if key is None:
        add_device(store, dev, secrets.token_bytes(HMAC_KEY_BYTES), note="daozhang flash")
        key = registered_key(store, dev)
    if key is None:
        raise StoreError(f"device {dev}: the HMAC key was not stored")
    if len(key) != HMAC_KEY_BYTES:
        raise StoreError(f"device {dev}: registered HMAC key is {len(key)} bytes, expected 32")
    return key


def registered_key(store: Store, dev: str) -> bytes | None:
    try:
        with store.transaction() as tx:
            return device_key(tx, dev)
    except Exception as exc:  # each engine has its own "no such table" error
        raise StoreError(f"{store.url}: no collector `devices` table: {exc}") from exc


def record_flash(store: Store, rec: FlashRecord) -> None:
    now = time.time()
    row: tuple[Any, ...] = (
        rec.dev,
        rec.board,
        rec.port,
        rec.fw_version,
        rec.fw_hash,
        rec.mpy,
        now,
        rec.operator,
    )
    with store.transaction() as tx:
        tx.execute("DELETE FROM flash_devices WHERE dev = ?", (rec.dev,))
        tx.execute(
            "INSERT INTO flash_devices (dev, board, port, fw_version, fw_hash, mpy, flashed_at,"
            " operator, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*row, rec.result),
        )
        tx.execute(
            "INSERT INTO flash_history (dev, board, port, fw_version, fw_hash, mpy, flashed_at,"
            " operator, files_written, files_removed, result, selftest_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *row,
                rec.files_written,
                rec.files_removed,
                rec.result,
                json.dumps(rec.selftest, ensure_ascii=False),
            ),
        )


def flashed_devices(store: Store) -> list[dict[str, Any]]:
    """The latest flash of every device id, by device id."""
    columns = ("dev", "board", "port", "fw_version", "fw_hash", "mpy", "flashed_at", "operator")
    with store.transaction() as tx:
        rows = tx.execute(f"SELECT {', '.join(columns)}, result FROM flash_devices ORDER BY dev")
    return [dict(zip((*columns, "result"), row, strict=True)) for row in rows]


def latest_heartbeat(store: Store, dev: str, since: float) -> float | None:
    """When the collector stored this device's first heartbeat after `since`, if it has."""
    try:
        with store.transaction() as tx:
            rows = tx.execute(
                "SELECT MIN(received_at) FROM heartbeats WHERE dev = ? AND received_at >= ?",
                (dev, since),
            )
    except Exception as exc:
        raise StoreError(f"{store.url}: no collector `heartbeats` table: {exc}") from exc
    return float(rows[0][0]) if rows and rows[0][0] is not None else None
