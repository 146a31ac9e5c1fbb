"""Heartbeats and online/offline status: the per-device timeline beside the records.

Neither moves an ack. A heartbeat is CBOR (DESIGN §1.3); a device with a key may append the
same HMAC as on batches, which is checked and stripped when present. Status is the plain
text `online` / `offline` the device publishes (retained), and its LWT publishes for it.
"""

from __future__ import annotations

import hmac
import json

from daozhang.collector.ingest import IngestResult, ingest_batch
from daozhang.collector.prepare import Prepared
from daozhang.collector.quarantine import quarantine
from daozhang.collector.validate import check_heartbeat
from daozhang.collector.wire import (
    MAC_BYTES,
    MAX_HEARTBEAT_BYTES,
    MAX_STATUS_BYTES,
    WireError,
    decode,
    mac_of,
    parse_topic,
)
from daozhang.collector.writer import GroupWriter
from daozhang.store import Transaction

_HB_COLUMNS = ["t", "epoch", "boot", "up", "fw", "cause", "heap", "link", "jrec", "jbytes"]
_HB_COLUMNS += ["jold_s", "next_seq", "ovf", "recon", "sync_ok", "sync_fail", "conn_ms", "exp_ms"]


def ingest_message(
    tx: Transaction,
    topic: str,
    payload: bytes,
    received_at: float,
    *,
    retained: bool = False,
    collector: str = "",
    require_key: bool = False,
    writer: GroupWriter | None = None,
    prepared: Prepared | None = None,
) -> IngestResult:
    """Route one MQTT message by its topic's last level; anything unexpected is quarantined."""
    try:
        dev, channel = parse_topic(topic)
    except WireError as exc:
        return _refused(
            tx, None, topic, exc, payload, received_at, collector, IngestResult("?", None)
        )
    if channel == "up":
        return ingest_batch(
            tx,
            dev,
            payload,
            received_at,
            collector=collector,
            require_key=require_key,
            writer=writer,
            prepared=prepared,
        )
    if channel == "hb":
        return ingest_heartbeat(tx, dev, payload, received_at, collector=collector)
    if channel == "status":
        return ingest_status(tx, dev, payload, received_at, retained=retained, collector=collector)
    unknown = WireError("topic", f"no collector channel {channel[:20]!r}")
    return _refused(
        tx, dev, topic, unknown, payload, received_at, collector, IngestResult("?", dev)
    )


def _refused(
    tx: Transaction,
    dev: str | None,
    topic: str,
    exc: WireError,
    payload: bytes,
    received_at: float,
    collector: str,
    result: IngestResult,
) -> IngestResult:
    if quarantine(
        tx,
        dev=dev,
        topic=topic,
        reason=exc.reason,
        detail=exc.detail,
        raw=payload,
        received_at=received_at,
        collector=collector,
    ):
        result.quarantined.append(exc.reason)
    else:
        result.duplicates += 1
    return result


def _touch_device(tx: Transaction, dev: str, now: float) -> None:
    tx.execute(
        "INSERT INTO devices (dev, first_seen, last_seen) VALUES (?, ?, ?)"
        " ON CONFLICT (dev) DO UPDATE SET first_seen = COALESCE(devices.first_seen,"
        " excluded.first_seen), last_seen = CASE WHEN devices.last_seen IS NULL"
        " OR devices.last_seen < excluded.last_seen THEN excluded.last_seen"
        " ELSE devices.last_seen END",
        (dev, now, now),
    )


def ingest_heartbeat(
    tx: Transaction, dev: str, payload: bytes, received_at: float, *, collector: str = ""
) -> IngestResult:
    result = IngestResult(channel="hb", dev=dev)
    topic = f"dz/v1/{dev}/hb"
    try:
        if len(payload) > MAX_HEARTBEAT_BYTES + MAC_BYTES:
            raise WireError("too_large", f"heartbeat of {len(payload)} bytes")
        rows = tx.execute("SELECT hmac_key FROM devices WHERE dev = ?", (dev,))
        key = bytes(rows[0][0]) if rows and rows[0][0] is not None else None
        body = payload
        if key is not None and _signed_by(key, payload):
            body = payload[:-MAC_BYTES]
        hb = check_heartbeat(decode(body, "heartbeat"), dev)
    except WireError as exc:
        return _refused(tx, dev, topic, exc, payload, received_at, collector, result)
    values = [
        hb.text_field(c) if c in ("fw", "cause", "link") else hb.int_field(c) for c in _HB_COLUMNS
    ]
    body_json = json.dumps(hb.body, ensure_ascii=False, separators=(",", ":"), default=repr)
    tx.execute(
        f"INSERT INTO heartbeats (dev, received_at, {', '.join(_HB_COLUMNS)}, body_json)"
        f" VALUES (?, ?, {', '.join('?' for _ in _HB_COLUMNS)}, ?)",
        (dev, received_at, *values, body_json),
    )
    _touch_device(tx, dev, received_at)
    result.backlog = hb.int_field("jrec")
    return result


def _signed_by(key: bytes, payload: bytes) -> bool:
    return len(payload) > MAC_BYTES and hmac.compare_digest(
        mac_of(key, payload[:-MAC_BYTES]), payload[-MAC_BYTES:]
    )


def ingest_status(
    tx: Transaction,
    dev: str,
    payload: bytes,
    received_at: float,
    *,
    retained: bool = False,
    collector: str = "",
) -> IngestResult:
    result = IngestResult(channel="status", dev=dev)
    topic = f"dz/v1/{dev}/status"
    text = payload[:MAX_STATUS_BYTES].decode("ascii", "replace").strip()
    if len(payload) > MAX_STATUS_BYTES or text not in ("online", "offline"):
        exc = WireError("status", "status must be `online` or `offline`")
        return _refused(tx, dev, topic, exc, payload, received_at, collector, result)
    online = text == "online"
    _touch_device(tx, dev, received_at)
    ((was_online, status_at),) = tx.execute(
        "SELECT online, status_at FROM devices WHERE dev = ?", (dev,)
    )
    # A retained status replayed to a (re)subscribing collector is not a new event.
    if not (retained and status_at is not None and bool(was_online) == online):
        tx.execute(
            "INSERT INTO status_events (dev, status, retained, received_at) VALUES (?, ?, ?, ?)",
            (dev, text, int(retained), received_at),
        )
        tx.execute(
            "UPDATE devices SET online = ?, status_at = ? WHERE dev = ?",
            (int(online), received_at, dev),
        )
    result.online = online
    return result
