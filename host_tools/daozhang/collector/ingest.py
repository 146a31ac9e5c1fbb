"""One upload in, rows out: the storage step of the collector (no MQTT).

`ingest_batch(tx, topic_dev, payload, received_at)` takes the verdict of `verify.py` on a batch
from `dz/v1/{dev}/up` and carries it out in the caller's transaction: a refused batch is
quarantined whole and moves no ack; each accepted record that is new by (dev, epoch, seq) is
stored, each refused one quarantined with its bytes and reason, and both are accounted for;
a record seen before with the same bytes is a duplicate, with other bytes a `conflict`. It
returns the acks to send once the transaction has committed, so that many messages share one
durable commit; tests and data loaders call it directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from daozhang.collector import placement
from daozhang.collector.accounting import AckState, advance, lock_state, save_state
from daozhang.collector.keys import DeviceInfo
from daozhang.collector.pan_check import mask_secrets
from daozhang.collector.quarantine import quarantine
from daozhang.collector.validate import Record
from daozhang.collector.verify import Refused, Upload, Verdict, verify
from daozhang.collector.wire import encode_batch
from daozhang.collector.writer import GroupWriter, read_device
from daozhang.contract import may_wait, may_wait_sql
from daozhang.store import Store, Transaction, is_transient


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
    verdict: Verdict | None = None,
    verified: bool = False,
) -> IngestResult:
    """Verify, store and account for one batch; return the acks to send after commit.

    With a `writer` shared by the messages of one transaction, rows are written when the
    caller flushes it (before committing); without one, before returning. `verdict` is the
    batch's `verify` done before the transaction, used if the device key still matches.
    `verified`: the payload is a batch whose MAC was checked and stripped when it came in
    (an inbox row): a key rotated since must not turn it into a forgery.
    """
    own = writer is None
    w = writer if writer is not None else GroupWriter()
    result = _ingest_batch(
        tx, w, topic_dev, payload, received_at, collector, require_key, verdict, verified
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
    verdict: Verdict | None,
    verified: bool,
) -> IngestResult:
    result = IngestResult(channel="up", dev=topic_dev)
    topic = f"dz/v1/{topic_dev}/up"
    device = w.device(tx, topic_dev)
    if verified:
        device, require_key = replace(device, key=None), False
    if verdict is None or not verdict.valid_for(device):
        verdict = verify(Upload(topic_dev, payload), device, require_key=require_key)
    if verdict.refusal is not None:
        exc = verdict.refusal
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
    batch, header = verdict.authentic()
    state = w.state(tx, topic_dev, header.epoch, received_at)
    records, accounted = _sort_records(tx, w, topic, state, verdict, result, received_at, collector)
    foreign = _foreign_receipts(tx, w, topic_dev, records)
    if foreign:
        records = _refuse_foreign(
            tx, topic, state, records, foreign, result, received_at, collector
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


def ingest_record_by_record(
    store: Store,
    topic_dev: str,
    payload: bytes,
    received_at: float,
    *,
    collector: str,
    require_key: bool = False,
    verified: bool = False,
) -> IngestResult:
    """An authentic batch that breaks ingest as a whole (a bug: its verdict let through what
    cannot be stored), stored one record per transaction: each record that still breaks is
    quarantined alone as `internal` with its device, epoch and seq, and accounted for, so its
    neighbours are stored and the device's ack moves on. Engine errors propagate (the caller
    waits and retries). Already stored records come back as duplicates: a crash half-way
    through is safe to repeat.
    """
    result = IngestResult(channel="up", dev=topic_dev)
    device = DeviceInfo(None, None, None) if verified else read_device(store.query, topic_dev)
    verdict = verify(Upload(topic_dev, payload), device, require_key=require_key)
    if verdict.refusal is not None:  # refused whole: ingest_batch alone quarantines it
        with store.transaction() as tx:
            return ingest_batch(tx, topic_dev, payload, received_at, collector=collector)
    batch, header = verdict.authentic()
    fields = {k: v for k, v in batch.fields.items() if k != "gaps"}
    # The declared gaps alone first (no record to blame if that fails), then each record.
    pieces: list[tuple[Record | Refused | None, bytes]] = []
    if header.gaps:
        pieces.append((None, encode_batch(batch.fields, [])))
    pieces += [(item, encode_batch(fields, [item.raw])) for item in verdict.records]
    for item, piece in pieces:
        try:
            with store.transaction() as tx:
                done = ingest_batch(
                    tx, topic_dev, piece, received_at, collector=collector, verified=True
                )
        except Exception as exc:  # one record breaks: it alone is quarantined
            if is_transient(exc) or item is None:
                raise
            done = _quarantine_unstorable(
                store, topic_dev, header.epoch, item, exc, received_at, collector
            )
        result.stored += done.stored
        result.duplicates += done.duplicates
        result.quarantined += done.quarantined
        result.acks = done.acks or result.acks
    return result


def _quarantine_unstorable(
    store: Store,
    dev: str,
    epoch: int,
    item: Record | Refused,
    exc: Exception,
    received_at: float,
    collector: str,
) -> IngestResult:
    result = IngestResult(channel="up", dev=dev)
    with store.transaction() as tx:
        state = lock_state(tx, dev, epoch, received_at)
        if quarantine(
            tx,
            dev=dev,
            topic=f"dz/v1/{dev}/up",
            reason="internal",
            detail=f"seq {item.seq} passed its checks but could not be stored: {exc!r}",
            raw=item.raw,
            received_at=received_at,
            collector=collector,
            epoch=epoch,
            seq=item.seq,
            secrets=item.error.secrets if isinstance(item, Refused) else (),
        ):
            result.quarantined.append("internal")
        else:
            result.duplicates += 1
        if item.seq is not None:
            advance(tx, state, [(item.seq, item.seq)])
        save_state(tx, state, received_at)
    result.acks.append(Ack(dev, epoch, state.upto))
    return result


def _sort_records(
    tx: Transaction,
    w: GroupWriter,
    topic: str,
    state: AckState,
    verdict: Verdict,
    result: IngestResult,
    received_at: float,
    collector: str,
) -> tuple[list[Record], list[tuple[int, int]]]:
    """New accepted records to store, and every seq this batch accounts for."""
    judged = verdict.records
    seen = _already_accounted(tx, w, state, judged)
    accepted = verdict.all_accepted
    if not seen and accepted is not None:  # the common case: new records that all pass
        return accepted, [(r.seq, r.seq) for r in accepted]
    records: list[Record] = []
    accounted: list[tuple[int, int]] = []
    for item in judged:
        seq = item.seq
        before = seen.get(seq) if seq is not None else None
        secrets = item.error.secrets if isinstance(item, Refused) else ()
        if seq is not None:
            accounted.append((seq, seq))
        if before is not None:
            if before == item.raw or before == mask_secrets(item.raw, secrets):
                result.duplicates += 1
                continue
            reason, detail = "conflict", f"seq {seq} was accounted for with other content"
        elif isinstance(item, Refused):
            reason, detail = item.error.reason, item.error.detail
            if seq is not None:
                seen[seq] = item.raw
        else:
            seen[item.seq] = item.raw
            records.append(item)
            continue
        if quarantine(
            tx,
            dev=state.dev,
            topic=topic,
            reason=reason,
            detail=detail,
            raw=item.raw,
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


ReceiptKey = tuple[str, str, str, str]


def _key(body: dict[str, Any]) -> ReceiptKey:
    return body["mid"], body["tid"], body["bat"], body["trc"]


def _foreign_receipts(
    tx: Transaction, w: GroupWriter, dev: str, records: list[Record]
) -> dict[ReceiptKey, str]:
    """Receipt keys of `records` that another device reported first (their owner), less those
    of a terminal an operator moved to `dev` since (DESIGN §2.3)."""
    keys = {(b["mid"], b["tid"], b["bat"], b["trc"]) for _, k, _, _, _, b, _ in records if k == "r"}
    if not keys:
        return {}
    owners = {k: w.owners[k] for k in keys if k in w.owners}
    # One query per terminal batch (mid, tid, bat), trace numbers in a list: it probes the
    # primary key, where a row-value IN would scan the whole table on SQLite.
    by_batch: dict[tuple[str, str, str], list[str]] = {}
    for mid, tid, bat, trc in sorted(keys - owners.keys()):
        by_batch.setdefault((mid, tid, bat), []).append(trc)
    for (mid, tid, bat), trcs in by_batch.items():
        marks = ", ".join("?" for _ in trcs)
        owners.update(
            ((mid, tid, bat, str(trc)), str(owner))
            for trc, owner in tx.execute(
                "SELECT trc, dev FROM receipts WHERE mid = ? AND tid = ? AND bat = ?"
                f" AND trc IN ({marks})",
                (mid, tid, bat, *trcs),
            )
        )
    for key in keys - owners.keys():
        w.owners[key] = dev  # first reported here
    foreign = {k: owner for k, owner in owners.items() if owner != dev}
    for mid, tid in {(k[0], k[1]) for k in foreign}:
        latest = tx.execute(
            "SELECT to_dev FROM terminal_moves WHERE mid = ? AND tid = ? ORDER BY id DESC LIMIT 1",
            (mid, tid),
        )
        if latest and latest[0][0] == dev:
            for k in [k for k in foreign if (k[0], k[1]) == (mid, tid)]:
                del foreign[k]
                w.owners[k] = dev
    return foreign


def _refuse_foreign(
    tx: Transaction,
    topic: str,
    state: AckState,
    records: list[Record],
    foreign: dict[ReceiptKey, str],
    result: IngestResult,
    received_at: float,
    collector: str,
) -> list[Record]:
    """Quarantine as `conflict` each receipt whose key belongs to another device; it is
    accounted for (its seq stays in `accounted`) and the rest is stored."""
    kept: list[Record] = []
    for r in records:
        owner = foreign.get(_key(r.body)) if r.kind == "r" else None
        if owner is None:
            kept.append(r)
            continue
        mid, tid, bat, trc = _key(r.body)
        if quarantine(
            tx,
            dev=state.dev,
            topic=topic,
            reason="conflict",
            detail=f"receipt {mid}/{tid}/{bat}/{trc} belongs to device {owner}"
            " (`daozhang device move-terminal` if the terminal moved)",
            raw=r.raw,
            received_at=received_at,
            collector=collector,
            epoch=state.epoch,
            seq=r.seq,
            secrets=(),
        ):
            result.quarantined.append("conflict")
        else:
            result.duplicates += 1
    return kept


def _already_accounted(
    tx: Transaction, w: GroupWriter, state: AckState, judged: list[Record | Refused]
) -> dict[int, bytes]:
    """seq -> bytes for the seqs of this batch that were stored or quarantined before."""
    seqs = [s for s in (r.seq for r in judged) if s is not None and s <= state.max_seen]
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


_RECEIPT_KEYS = (
    "mid tid bat trc typ ch amt cur pan ck ent lt st rc rrn auth rv sd sm otrc orrn ord xid"
)
_RECEIPT_KEY_LIST = _RECEIPT_KEYS.split()
_RECEIPT_COLS = f"{_RECEIPT_KEYS} dev epoch seq t placed_t received_at".split()
# The latest state of a transaction: the higher seq of the same device epoch; across epochs
# (a reflashed terminal's seqs say nothing about the old ones) the later event time. Another
# device's row is taken over only by the device an operator moved the terminal to (latest
# `terminal_moves`), at a later event time: checked here, in the statement, because two
# collectors on PostgreSQL can both find no owner for one key; the second upsert then waits
# for the first to commit and, finding another device's row, changes nothing. An older upload
# arriving late never puts a state back (`reversed` stays `reversed`); a state whose time is
# unknown does not replace a known one.
_LATER = (
    " excluded.placed_t IS NOT NULL"
    " AND (receipts.placed_t IS NULL OR excluded.placed_t >= receipts.placed_t)"
)
_RECEIPT_UPSERT = (
    f"INSERT INTO receipts ({', '.join(_RECEIPT_COLS)}, waits)"
    f" VALUES ({', '.join('?' for _ in _RECEIPT_COLS)}, ?)"
    " ON CONFLICT (mid, tid, bat, trc) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _RECEIPT_COLS if c not in ("mid", "tid"))
    # Whether it may wait on its payout, from the new state alone (collector/tables.py v10):
    # the settlement importer lowers it again when the acquirer's rows show it paid.
    + f", waits = {may_wait_sql('excluded.typ', 'excluded.st', 'excluded.rrn')}"
    + " WHERE (receipts.dev = excluded.dev AND receipts.epoch = excluded.epoch"
    " AND receipts.seq < excluded.seq)"
    f" OR (receipts.dev = excluded.dev AND receipts.epoch <> excluded.epoch AND{_LATER})"
    f" OR (receipts.dev <> excluded.dev AND{_LATER} AND excluded.dev = (SELECT m.to_dev"
    " FROM terminal_moves m WHERE m.mid = excluded.mid AND m.tid = excluded.tid"
    " ORDER BY m.id DESC LIMIT 1))"
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
            waits = may_wait(row[_TYP], row[_ST], row[_RRN])
            receipts.append((*row, dev, epoch, r.seq, r.t, p, received_at, waits))
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
_TYP, _ST, _RRN = (_RECEIPT_KEY_LIST.index(k) for k in ("typ", "st", "rrn"))
_CUR = _RECEIPT_KEY_LIST.index("cur")
