"""The fast ack path: an upload that needs nothing but its seqs to be acked is kept whole.

Storing a batch record by record (exact bytes, checks, a `records` row and a `receipts` row
each) costs about 28 µs per record; acking needs far less. What the ack says (DESIGN §1.3) is
which seqs are accounted for, and every record of an authentic batch is accounted for whether
it is later stored or quarantined. So an upload that is authentic (topic, size, key, MAC),
well-formed at the batch level (CBOR within the contract's limits, the header), holds no
Luhn-valid digit run but merchant ids, and carries seqs that continue the device's contiguous
run without a hole, is written as one `inbox` row in the acking transaction and acked at
once: the ack still means "on disk", as the raw batch. `project` stores its records from
there, through the same `ingest_batch` as any other upload, behind the ack; deleting the
inbox row goes in the same transaction, so a crash between the two loses nothing and stores
nothing twice.

Everything else (gaps, holes, out-of-order seqs, a record without a usable seq, anything the
screen doubts) takes the full path at once, after the device's inbox rows are projected so
that ingest sees the uploads in the order they came. The screen may only say yes to what
`authentic_batch` accepts with the same seqs: tests/collector/test_inbox.py holds it to that,
and to storing exactly what the full path stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daozhang.collector.ingest import Ack, IngestResult, ingest_batch
from daozhang.collector.pan_check import holds_pan_like_run
from daozhang.collector.prepare import DeviceInfo, Prepared, authentic_body
from daozhang.collector.validate import INT64_MAX, check_batch_header
from daozhang.collector.wire import MAX_BATCH_KEYS, WireError, decode
from daozhang.collector.writer import GroupWriter, Query
from daozhang.store import Transaction

_INSERT = (
    "INSERT INTO inbox (dev, epoch, seq_from, seq_to, body, received_at, collector)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_EVERY_ROW = 2**62  # a device's whole inbox, before an upload of it takes the full path


@dataclass(frozen=True)
class Screened:
    """An upload the fast path can ack: its MAC checked and stripped, its seqs a run."""

    dev: str
    epoch: int
    seq_from: int
    seq_to: int
    body: bytes
    key: bytes | None  # the HMAC key the screen assumed: as `Prepared`

    def valid_for(self, device: DeviceInfo) -> bool:
        return self.key == device.key

    @property
    def records(self) -> int:
        return self.seq_to - self.seq_from + 1


def screen(
    device: DeviceInfo, topic_dev: str, payload: bytes, require_key: bool
) -> Screened | None:
    """The checks an ack needs; None sends the upload down the full path."""
    try:
        body = authentic_body(device, topic_dev, payload, require_key)
        batch = decode(body, "batch")
    except WireError:
        return None
    if type(batch) is not dict or len(batch) > MAX_BATCH_KEYS:
        return None
    recs = batch.get("recs")
    if type(recs) is not list or not recs or set(map(type, batch)) != {str}:
        return None
    try:
        header = check_batch_header({k: v for k, v in batch.items() if k != "recs"}, topic_dev)
    except WireError:
        return None
    if header.gaps:
        return None
    seqs: list[Any] = [r.get("seq") if type(r) is dict else None for r in recs]
    if set(map(type, seqs)) != {int}:  # exact: bool is no seq
        return None
    first: int = seqs[0]
    last: int = seqs[-1]
    if first < 1 or last > INT64_MAX or seqs != list(range(first, last + 1)):
        return None
    # A full PAN must be masked before any of these bytes are kept: the record checks do it.
    mids = {
        r["b"]["mid"].encode()
        for r in recs
        if type(r.get("b")) is dict and type(r["b"].get("mid")) is str
    }
    if holds_pan_like_run(body, mids):
        return None
    return Screened(topic_dev, header.epoch, first, last, body, device.key)


def accept(
    tx: Transaction,
    w: GroupWriter,
    upload: Screened,
    received_at: float,
    collector: str,
) -> Ack | None:
    """Keep the upload in the inbox and move the ack over it; None if its seqs leave a hole
    or the device's run has one (the full path then reads back what joins up).

    `max_seen` stays where the stored records leave it: `project` must find these seqs new.
    """
    state = w.state(tx, upload.dev, upload.epoch, received_at)
    if state.max_seen > state.upto or upload.seq_from > state.upto + 1:
        return None
    w.add(
        _INSERT,
        (
            upload.dev,
            upload.epoch,
            upload.seq_from,
            upload.seq_to,
            upload.body,
            received_at,
            collector,
        ),
    )
    state.upto = max(state.upto, upload.seq_to)
    w.seen(upload.dev, received_at, [])
    return Ack(upload.dev, upload.epoch, state.upto)


def ingest_upload(
    tx: Transaction,
    w: GroupWriter,
    dev: str,
    payload: bytes,
    received_at: float,
    *,
    collector: str,
    require_key: bool,
    screened: Screened | None = None,
    prepared: Prepared | None = None,
) -> list[IngestResult]:
    """One upload of `dev`: acked from the inbox when `screened` (by `screen`, for the key
    the store still holds) continues the device's run; else stored by `ingest_batch` after
    the device's inbox rows. The results of those rows come first."""
    if screened is not None and screened.valid_for(w.device(tx, dev)):
        ack = accept(tx, w, screened, received_at, collector)
        if ack is not None:
            return [IngestResult("up", dev, acks=[ack], accepted=screened.records)]
    # Even with this collector's inbox off (`--max-inbox 0`): another of the group may have
    # acked this device's earlier uploads into it, and they must be stored first.
    results = project(tx, w, dev=dev, records=_EVERY_ROW).results
    result = ingest_batch(
        tx,
        dev,
        payload,
        received_at,
        collector=collector,
        require_key=require_key,
        writer=w,
        prepared=prepared,
    )
    return [*results, result]


@dataclass
class Projection:
    results: list[IngestResult]
    records: int  # the seqs the projected rows covered


def project(
    tx: Transaction,
    w: GroupWriter,
    *,
    dev: str | None = None,
    records: int = 2000,
) -> Projection:
    """Store the records of the oldest inbox rows (of `dev`, or of any device) up to about
    `records` records (at least one row), and remove those rows; their acks were sent when
    they came in.

    A row is claimed by deleting it: when two collectors reach for the same rows, the second
    delete finds them gone once the first commits, and projects nothing twice.
    """
    if _INSERT in w.rows:
        w.flush(tx)  # inbox rows written earlier in this transaction must be visible
    where, args = ("WHERE dev = ?", (dev,)) if dev is not None else ("", ())
    candidates = tx.execute(
        f"SELECT id, seq_to - seq_from + 1 FROM inbox {where} ORDER BY id LIMIT ?",
        (*args, records),
    )
    ids: list[int] = []
    covered = 0
    for row_id, n in candidates:
        if ids and covered + int(n) > records:
            break
        ids.append(int(row_id))
        covered += int(n)
    done = Projection([], 0)
    if not ids:
        return done
    marks = ", ".join("?" for _ in ids)
    claimed = tx.execute(
        f"DELETE FROM inbox WHERE id IN ({marks})"
        " RETURNING id, dev, seq_from, seq_to, body, received_at, collector",
        ids,
    )
    for _, row_dev, seq_from, seq_to, body, received_at, collector in sorted(claimed):
        result = ingest_batch(
            tx,
            str(row_dev),
            bytes(body),
            float(received_at),
            collector=str(collector),
            writer=w,
            verified=True,
        )
        result.acks = []  # sent when the row came in; any ack from here is no higher
        result.projected = True
        done.results.append(result)
        done.records += int(seq_to) - int(seq_from) + 1
    return done


def pending_records(query: Query) -> int:
    """Records acked but not yet projected, over every collector, through a transaction's
    query or, for a reader that must not take SQLite's write lock, a store's."""
    rows = query("SELECT COALESCE(SUM(seq_to - seq_from + 1), 0) FROM inbox", ())
    return int(rows[0][0])
