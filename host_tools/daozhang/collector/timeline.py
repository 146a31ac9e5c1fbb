"""Heartbeats and online/offline status: the per-device timeline beside the records.

Neither moves an ack. A heartbeat is CBOR (DESIGN §1.3); a device with a key appends the
same HMAC as on batches, and one without it is refused (`mac`): a forged heartbeat would put
a made-up backlog in `fleet status`. A heartbeat stored already (same epoch, boot, uptime and
time) is a replay or a redelivery and is stored once.

Status is `online` / `offline`, published by the device (retained) and by its LWT. A device
with a key sends `online E.B.S` / `offline E.B.S` + HMAC, where E.B.S is its journal epoch,
boot and CONNECT attempt (the LWT is signed at CONNECT with that attempt's count, so it is
`offline` of that attempt). Within an epoch the counter only goes up (`offline` after
`online` of the same attempt); an epoch seen before and left is never taken again: a
recorded status replayed later, like a redelivered one, changes nothing (counted as a
duplicate); an unsigned or wrongly signed one is quarantined (`mac`).
"""

from __future__ import annotations

import json

from daozhang.collector.ingest import IngestResult, ingest_batch
from daozhang.collector.quarantine import quarantine
from daozhang.collector.validate import check_heartbeat
from daozhang.collector.verify import Verdict
from daozhang.collector.wire import (
    MAC_BYTES,
    MAX_HEARTBEAT_BYTES,
    MAX_SIGNED_STATUS_BYTES,
    MAX_STATUS_BYTES,
    WireError,
    decode,
    parse_topic,
    split_mac,
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
    verdict: Verdict | None = None,
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
            verdict=verdict,
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
        body = split_mac(payload, key)
        hb = check_heartbeat(decode(body, "heartbeat"), dev)
    except WireError as exc:
        return _refused(tx, dev, topic, exc, payload, received_at, collector, result)
    values = [
        hb.text_field(c) if c in ("fw", "cause", "link") else hb.int_field(c) for c in _HB_COLUMNS
    ]
    if _heartbeat_stored(tx, dev, hb.int_field("t"), hb.int_field("epoch"), hb.int_field("boot"),
                         hb.int_field("up")):  # fmt: skip
        result.duplicates += 1
        return result
    body_json = json.dumps(hb.body, ensure_ascii=False, separators=(",", ":"), default=repr)
    tx.execute(
        f"INSERT INTO heartbeats (dev, received_at, {', '.join(_HB_COLUMNS)}, body_json)"
        f" VALUES (?, ?, {', '.join('?' for _ in _HB_COLUMNS)}, ?)",
        (dev, received_at, *values, body_json),
    )
    _touch_device(tx, dev, received_at)
    result.backlog = hb.int_field("jrec")
    return result


def _heartbeat_stored(
    tx: Transaction, dev: str, t: int | None, epoch: int | None, boot: int | None, up: int | None
) -> bool:
    """The same heartbeat again: one device never sends two at one (epoch, boot, uptime)."""
    if None in (t, epoch, boot, up):
        return False
    return bool(
        tx.execute(
            "SELECT 1 FROM heartbeats WHERE dev = ? AND t = ? AND epoch = ? AND boot = ?"
            " AND up = ? LIMIT 1",
            (dev, t, epoch, boot, up),
        )
    )


_STATUS_RANK = {"online": 0, "offline": 1}


def _parse_status(payload: bytes, key: bytes | None) -> tuple[str, tuple[int, int, int] | None]:
    """-> (word, (epoch, boot, session) or None for an unkeyed device's plain word)."""
    if key is None:
        text = payload[:MAX_STATUS_BYTES].decode("ascii", "replace").strip()
        if len(payload) > MAX_STATUS_BYTES or text not in _STATUS_RANK:
            raise WireError("status", "status must be `online` or `offline`")
        return text, None
    if len(payload) > MAX_SIGNED_STATUS_BYTES:
        raise WireError("status", f"signed status of {len(payload)} bytes")
    body = split_mac(payload, key)
    word, _, counter = body.decode("ascii", "replace").partition(" ")
    parts = counter.split(".")
    if (
        word not in _STATUS_RANK
        or len(parts) != 3
        or not all(p.isascii() and p.isdigit() and len(p) <= 12 for p in parts)
    ):
        raise WireError("status", "signed status must be `online|offline EPOCH.BOOT.SESSION`")
    return word, (int(parts[0]), int(parts[1]), int(parts[2]))


def _status_is_new(tx: Transaction, dev: str, word: str, counter: tuple[int, int, int]) -> bool:
    """Whether a signed status is newer than the device's latest signed one."""
    epoch, boot, session = counter
    latest = tx.execute(
        "SELECT epoch, boot, session, status FROM status_events WHERE dev = ? AND epoch IS NOT"
        " NULL ORDER BY id DESC LIMIT 1",
        (dev,),
    )
    if not latest:
        return True
    l_epoch, l_boot, l_session, l_word = latest[0]
    if epoch != l_epoch:
        # A new journal (reflash) starts a new epoch; one seen before and left is history.
        seen = tx.execute(
            "SELECT 1 FROM status_events WHERE dev = ? AND epoch = ? LIMIT 1", (dev, epoch)
        )
        return not seen
    return (boot, session, _STATUS_RANK[word]) > (l_boot, l_session, _STATUS_RANK[l_word])


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
    rows = tx.execute("SELECT hmac_key FROM devices WHERE dev = ?", (dev,))
    key = bytes(rows[0][0]) if rows and rows[0][0] is not None else None
    try:
        text, counter = _parse_status(payload, key)
    except WireError as exc:
        return _refused(tx, dev, topic, exc, payload, received_at, collector, result)
    if counter is not None and not _status_is_new(tx, dev, text, counter):
        # Older than the latest: a replay, or two collectors taking an LWT and the next
        # `online` out of order. Either way it changes nothing.
        result.duplicates += 1
        return result
    online = text == "online"
    _touch_device(tx, dev, received_at)
    ((was_online, status_at),) = tx.execute(
        "SELECT online, status_at FROM devices WHERE dev = ?", (dev,)
    )
    # A retained status replayed to a (re)subscribing collector is not a new event.
    if not (retained and status_at is not None and bool(was_online) == online):
        epoch, boot, session = counter if counter is not None else (None, None, None)
        tx.execute(
            "INSERT INTO status_events (dev, status, retained, received_at, epoch, boot,"
            " session) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (dev, text, int(retained), received_at, epoch, boot, session),
        )
        tx.execute(
            "UPDATE devices SET online = ?, status_at = ? WHERE dev = ?",
            (int(online), received_at, dev),
        )
    result.online = online
    return result
