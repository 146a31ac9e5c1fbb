"""The quarantine table: every message or record refused, with its bytes and the reason.

A message refused again with the same bytes for the same reason is one row whose `repeats`
grows (a device resending a bad batch must not fill the disk); a full PAN is masked in the
kept bytes, length unchanged, so that the store never holds one.
"""

from __future__ import annotations

import hashlib

from daozhang.collector.pan_check import mask_pans, mask_secrets
from daozhang.collector.wire import QUARANTINE_KEEP_BYTES
from daozhang.store import Transaction


def quarantine(
    tx: Transaction,
    *,
    dev: str | None,
    topic: str,
    reason: str,
    detail: str,
    raw: bytes,
    received_at: float,
    collector: str,
    epoch: int | None = None,
    seq: int | None = None,
    secrets: tuple[str, ...] | None = None,
) -> bool:
    """Keep `raw` with its reason; True if this is the first time these bytes were refused.

    `secrets` are the full PANs a record check found; None means the bytes were never
    decoded, so every card-number-like run is masked.
    """
    if len(raw) > QUARANTINE_KEEP_BYTES:
        detail = f"{detail} (first {QUARANTINE_KEEP_BYTES} of {len(raw)} bytes kept)"
        raw = raw[:QUARANTINE_KEEP_BYTES]
    raw = mask_pans(raw) if secrets is None else mask_secrets(raw, secrets)
    digest = hashlib.sha256(f"{dev}|{topic}|{reason}|{epoch}|{seq}|".encode() + raw).hexdigest()
    rows = tx.execute(
        "INSERT INTO quarantine (dev, topic, reason, detail, epoch, seq, raw, digest,"
        " received_at, last_at, repeats, collector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)"
        " ON CONFLICT (digest) DO UPDATE SET repeats = quarantine.repeats + 1,"
        " last_at = excluded.last_at RETURNING repeats",
        (
            dev,
            topic,
            reason,
            detail[:500],
            epoch,
            seq,
            raw,
            digest,
            received_at,
            received_at,
            collector,
        ),
    )
    return bool(rows) and int(rows[0][0]) == 1
