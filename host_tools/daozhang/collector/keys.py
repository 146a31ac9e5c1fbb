"""The device key store: one HMAC-SHA256 key per device, in the `devices` table.

The flashing tool writes the same key to the device; the collector checks each batch's MAC
with it before decoding anything. A key is never printed except when it is generated here.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from daozhang.collector.wire import DEV_PATTERN
from daozhang.errors import InputError, StoreError
from daozhang.store import Store

MIN_KEY_BYTES = 16
MAX_KEY_BYTES = 64


def new_key() -> bytes:
    return secrets.token_bytes(32)


def parse_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise InputError(f"key is not hexadecimal: {exc}") from exc
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InputError(f"key has {len(key)} bytes; use {MIN_KEY_BYTES} to {MAX_KEY_BYTES}")
    return key


def add_device(
    store: Store, dev: str, key: bytes | None, *, replace: bool = False, note: str | None = None
) -> None:
    """Register `dev` (with its key); refuses to change an existing key unless `replace`."""
    if not DEV_PATTERN.fullmatch(dev):
        raise InputError(f"device id {dev!r} is not [A-Za-z0-9_-]{{4,32}}")
    now = time.time()
    with store.transaction() as tx:
        rows = tx.execute("SELECT hmac_key FROM devices WHERE dev = ?", (dev,))
        if rows and rows[0][0] is not None and key is not None and not replace:
            if bytes(rows[0][0]) == key:
                return  # the same key again: nothing to do (flashing may retry)
            raise StoreError(f"device {dev} already has a different key; use --replace")
        if rows:
            tx.execute(
                "UPDATE devices SET hmac_key = COALESCE(?, hmac_key), key_added_at = ?,"
                " note = COALESCE(?, note) WHERE dev = ?",
                (key, now if key is not None else None, note, dev),
            )
        else:
            tx.execute(
                "INSERT INTO devices (dev, hmac_key, key_added_at, note) VALUES (?, ?, ?, ?)",
                (dev, key, now if key is not None else None, note),
            )


@dataclass(frozen=True)
class DeviceInfo:
    """A device's entry in the key store as the collector reads it (key None: no key, or no
    entry at all); `mid`/`tid`: the terminal it last served."""

    key: bytes | None
    mid: str | None
    tid: str | None


def move_terminal(
    store: Store, mid: str, tid: str, to_dev: str, *, note: str | None = None
) -> str | None:
    """Give terminal (`mid`, `tid`) to `to_dev`: its receipts, first reported by another
    device, may then be updated by `to_dev` instead of being quarantined as `conflict`.
    Nothing is rewritten: the records and receipts stay as each device reported them, and
    the move is kept in `terminal_moves`. Returns the device that served it before, if any."""
    if not DEV_PATTERN.fullmatch(to_dev):
        raise InputError(f"device id {to_dev!r} is not [A-Za-z0-9_-]{{4,32}}")
    now = time.time()
    with store.transaction() as tx:
        if not tx.execute("SELECT 1 FROM devices WHERE dev = ?", (to_dev,)):
            raise InputError(f"no device {to_dev!r} in the store (`daozhang device add` it first)")
        before = tx.execute(
            "SELECT dev FROM device_terminals WHERE mid = ? AND tid = ? AND dev <> ?"
            " ORDER BY last_seen DESC LIMIT 1",
            (mid, tid, to_dev),
        )
        from_dev = str(before[0][0]) if before else None
        tx.execute(
            "INSERT INTO terminal_moves (mid, tid, from_dev, to_dev, moved_at, note)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (mid, tid, from_dev, to_dev, now, note),
        )
    return from_dev


@dataclass(frozen=True)
class DeviceRow:
    dev: str
    has_key: bool
    key_added_at: float | None
    first_seen: float | None
    last_seen: float | None
    online: bool
    mid: str | None
    tid: str | None
    note: str | None


def list_devices(store: Store) -> list[DeviceRow]:
    with store.transaction() as tx:
        rows = tx.execute(
            "SELECT dev, hmac_key IS NOT NULL, key_added_at, first_seen, last_seen, online,"
            " mid, tid, note FROM devices ORDER BY dev"
        )
    return [
        DeviceRow(str(r[0]), bool(r[1]), r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8])
        for r in rows
    ]
