"""One MQTT message in, rows out: the pure storage step of the collector (interface C).

`ingest_batch(tx, topic_dev, payload, received_at)` validates a batch from `dz/v1/{dev}/up`,
stores each new record exactly once by (dev, epoch, seq), quarantines what fails with its
bytes and reason, and returns the acks to send once the caller's transaction has committed.
It runs inside the caller's transaction so that many messages share one durable commit, and
it needs no MQTT: tests and data loaders call it directly.

Order of checks, cheapest and most dangerous first: topic, size, the device's key and the MAC
on the raw bytes, then CBOR with limits, then the batch header (dev must match the topic),
then each record. Only a batch that passed its MAC (or comes from a device without a key) on
its own topic may move an ack; inside such a batch a bad record is quarantined *and*
accounted for, so one bad record cannot stall a device forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from daozhang.collector import placement
from daozhang.collector.accounting import AckState, advance
from daozhang.collector.pan_check import mask_secrets
from daozhang.collector.prepare import Prepared, prepare_batch
from daozhang.collector.quarantine import quarantine
from daozhang.collector.validate import (
    Record,
    check_record,
    seq_of,
)
from daozhang.collector.wire import WireError
from daozhang.collector.writer import GroupWriter
from daozhang.store import Transaction


@dataclass(frozen=True)
class Ack:
    """`upto` for (dev, epoch), to publish on `dz/v1/{dev}/ack` after the commit."""

    dev: str
    epoch: int
    upto: int


@dataclass
class IngestResult:
    channel: str  # "up", "hb" or "status"
    dev: str | None
    acks: list[Ack] = field(default_factory=list)
    stored: int = 0  # new records
    accepted: int = 0  # records acked from the inbox, stored when projected (inbox.py)
    projected: bool = False  # this result stored an inbox row: its message was counted before
    duplicates: int = 0  # records (or refused bytes) seen before, identical
    quarantined: list[str] = field(default_factory=list)  # one reason per new quarantine row
    backlog: int | None = None  # a heartbeat's count of records the device still holds
    online: bool | None = None  # a status message's state


def ingest_batch(
    tx: Transaction,
    topic_dev: str,
    payload: bytes,
    received_at: float,
    *,
    collector: str = "",
    require_key: bool = False,
    writer: GroupWriter | None = None,
    prepared: Prepared | None = None,
    verified: bool = False,
) -> IngestResult:
    """Validate, store and account for one batch; return the acks to send after commit.

    With a `writer` shared by the messages of one transaction, rows are written when the
    caller flushes it (before committing); without one, before returning. `prepared` is the
    batch's `prepare_batch` done before the transaction, used if the device key still matches.
    `verified`: the payload is a batch whose MAC was checked and stripped when it came in
    (an inbox row): a key rotated since must not turn it into a forgery.
    """
    own = writer is None
    w = writer if writer is not None else GroupWriter()
    result = _ingest_batch(
        tx, w, topic_dev, payload, received_at, collector, require_key, prepared, verified
    )
    if own:
        w.flush(tx)
    return result


def _ingest_batch(
    tx: Transaction,
    w: GroupWriter,
    topic_dev: str,
    payload: bytes,
    received_at: float,
    collector: str,
    require_key: bool,
    prepared: Prepared | None,
    verified: bool,
) -> IngestResult:
    result = IngestResult(channel="up", dev=topic_dev)
    topic = f"dz/v1/{topic_dev}/up"
    device = w.device(tx, topic_dev)
    if verified:
        device, require_key = replace(device, key=None), False
    if prepared is None or not prepared.valid_for(device):
        prepared = prepare_batch(device, topic_dev, payload, require_key)
    if isinstance(prepared.verdict, WireError):
        exc = prepared.verdict
        if quarantine(
            tx,
            dev=topic_dev if exc.reason != "topic" else None,
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
    batch, header = prepared.verdict
    state = w.state(tx, topic_dev, header.epoch, received_at)
    records, accounted = _sort_records(
        tx, w, topic, state, batch.recs, prepared.checked, result, received_at, collector
    )
    _store(w, state, records, received_at)
    result.stored = len(records)
    for low, high in header.gaps:
        w.add(
            "INSERT INTO declared_gaps (dev, epoch, seq_from, seq_to, received_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (topic_dev, header.epoch, low, high, received_at),
        )
        accounted.append((low, high))
    advance(tx, state, accounted, before_read=lambda: w.flush(tx))
    if state.unplaced > 0:
        w.flush(tx)
        placement.backfill(tx, state, records)
    terminals = {(r.body["mid"], r.body["tid"]): None for r in records if r.kind == "r"}
    w.seen(topic_dev, received_at, list(terminals))
    seqs = [low for low, high in accounted if low == high]
    w.add(
        "INSERT INTO uploads (dev, epoch, seq_from, seq_to, n_records, n_new, n_dup,"
        " n_quarantined, gaps_json, received_at, collector)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            topic_dev,
            header.epoch,
            min(seqs) if seqs else None,
            max(seqs) if seqs else None,
            len(batch.recs),
            result.stored,
            result.duplicates,
            len(result.quarantined),
            json.dumps(header.gaps) if header.gaps else None,
            received_at,
            collector,
        ),
    )
    result.acks.append(Ack(topic_dev, header.epoch, state.upto))
    return result


def _sort_records(
    tx: Transaction,
    w: GroupWriter,
    topic: str,
    state: AckState,
    recs: list[Any],
    checked: list[Record] | None,
    result: IngestResult,
    received_at: float,
    collector: str,
) -> tuple[list[Record], list[tuple[int, int]]]:
    """New valid records to store, and every seq this batch accounts for.

    `checked`: the batch's records when every one passed its checks (`check_batch`).
    """
    seen = _already_accounted(tx, w, state, recs)
    if not seen and checked is not None:  # the common case: new records that all pass
        return checked, [(r.seq, r.seq) for r in checked]
    records: list[Record] = []
    accounted: list[tuple[int, int]] = []
    for rec in recs:
        seq = seq_of(rec.value)
        before = seen.get(seq) if seq is not None else None
        if before is not None:
            accounted.append((seq, seq))  # type: ignore[arg-type]
            if before == rec.raw or before == _as_quarantined(rec):
                result.duplicates += 1
                continue
            reason, detail = "conflict", f"seq {seq} was accounted for with other content"
            secrets = _secrets_of(rec)
        else:
            try:
                record = check_record(rec.value, rec.raw)
            except WireError as exc:
                reason, detail, secrets = exc.reason, exc.detail, exc.secrets
            else:
                seen[record.seq] = rec.raw
                records.append(record)
                accounted.append((record.seq, record.seq))
                continue
            if seq is not None:
                seen[seq] = rec.raw
                accounted.append((seq, seq))
        if quarantine(
            tx,
            dev=state.dev,
            topic=topic,
            reason=reason,
            detail=detail,
            raw=rec.raw,
            received_at=received_at,
            collector=collector,
            epoch=state.epoch,
            seq=seq,
            secrets=secrets,
        ):
            result.quarantined.append(reason)
        else:
            result.duplicates += 1
    return records, accounted


def _secrets_of(rec: Any) -> tuple[str, ...]:
    try:
        check_record(rec.value, rec.raw)
    except WireError as exc:
        return exc.secrets
    return ()


def _as_quarantined(rec: Any) -> bytes:
    """The bytes as quarantine keeps them (full PANs masked), to recognise a resend."""
    return mask_secrets(rec.raw, _secrets_of(rec))


def _already_accounted(
    tx: Transaction, w: GroupWriter, state: AckState, recs: list[Any]
) -> dict[int, bytes]:
    """seq -> bytes for the seqs of this batch that were stored or quarantined before."""
    seqs = [s for s in (seq_of(r.value) for r in recs) if s is not None and s <= state.max_seen]
    if not seqs:
        return {}  # the usual case: everything in this batch is above what was ever seen
    w.flush(tx)  # earlier batches of this transaction must be visible to the read
    args = (state.dev, state.epoch, min(seqs), max(seqs))
    found = {
        int(s): bytes(raw)
        for s, raw in tx.execute(
            "SELECT seq, raw FROM quarantine WHERE dev = ? AND epoch = ?"
            " AND seq >= ? AND seq <= ? ORDER BY id DESC",  # the first refusal wins
            args,
        )
    }
    found.update(
        (int(s), bytes(raw))
        for s, raw in tx.execute(
            "SELECT seq, raw FROM records WHERE dev = ? AND epoch = ? AND seq >= ? AND seq <= ?",
            args,
        )
    )
    return found


_RECEIPT_KEYS = "mid tid bat trc typ ch amt cur pan ck ent lt st rc rrn auth rv sd sm otrc orrn"
_RECEIPT_KEY_LIST = _RECEIPT_KEYS.split()
_RECEIPT_COLS = f"{_RECEIPT_KEYS} dev epoch seq t placed_t received_at".split()
# The latest state of a transaction: the higher seq of the same device epoch, else the newer
# upload (a reflashed terminal starts a new epoch whose seqs say nothing about the old one).
_RECEIPT_UPSERT = (
    f"INSERT INTO receipts ({', '.join(_RECEIPT_COLS)})"
    f" VALUES ({', '.join('?' for _ in _RECEIPT_COLS)})"
    " ON CONFLICT (mid, tid, bat, trc) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _RECEIPT_COLS if c not in ("mid", "tid"))
    + " WHERE receipts.dev <> excluded.dev OR receipts.epoch <> excluded.epoch"
    " OR receipts.seq < excluded.seq"
)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()  # unknown keys may carry byte strings; JSON has no bytes
    raise TypeError(f"{type(value).__name__} is not part of the record contract")


def _store(w: GroupWriter, state: AckState, records: list[Record], received_at: float) -> None:
    if not records:
        return
    placed = placement.place(state, records)
    dev, epoch = state.dev, state.epoch
    w.add_many(
        "INSERT INTO records (dev, epoch, seq, kind, t, boot, up, placed_t, raw, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (dev, epoch, r.seq, r.kind, r.t, r.boot, r.up, p, r.raw, received_at)
            for r, p in zip(records, placed, strict=True)
        ],
    )
    receipts = []
    diags = []
    for r, p in zip(records, placed, strict=True):
        b = r.body
        if r.kind == "r":
            # DESIGN §1.2: the channel defaults to card and the currency to CNY when absent.
            row = list(map(b.get, _RECEIPT_KEY_LIST))
            row[_CH] = row[_CH] or "card"
            row[_CUR] = row[_CUR] or "CNY"
            receipts.append((*row, dev, epoch, r.seq, r.t, p, received_at))
        else:
            diags.append((dev, epoch, r.seq, r.boot, r.up, r.t, p, b["ev"], _json(b), received_at))
    if receipts:
        w.add_many(_RECEIPT_UPSERT, receipts)
    if diags:
        w.add_many(
            "INSERT INTO diag_events (dev, epoch, seq, boot, up, t, placed_t, ev, body_json,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            diags,
        )


# One encoder for all records: json.dumps with options would build a new one per call.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode

_CH = _RECEIPT_KEY_LIST.index("ch")
_CUR = _RECEIPT_KEY_LIST.index("cur")
