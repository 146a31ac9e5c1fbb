"""The fast ack path: an upload that needs nothing but its seqs to be acked is kept whole.

Storing a batch record by record (exact bytes, checks, a `records` row and a `receipts` row
each) costs about 28 µs per record; acking needs far less. What the ack says (DESIGN §1.3) is
which seqs are accounted for, and every record of an authentic batch is accounted for whether
it is later stored or quarantined. So an upload whose verdict (`verify.py`) names an `inbox`
run that continues the device's contiguous run without a hole is written as one `inbox` row in
the acking transaction and acked at once: the ack still means "on disk", as the raw batch.
`project` stores its records from there, through the same `ingest_batch` as any other upload,
behind the ack; deleting the inbox row goes in the same transaction, so a crash between the
two loses nothing and stores nothing twice.

Everything else (gaps, holes, out-of-order seqs, a record without a usable seq) takes the full
path at once, after the device's inbox rows are projected so that ingest sees the uploads in
the order they came. tests/collector/test_inbox.py holds the two to storing the same rows.

`Projector` stores the inbox for the collector, in chunks: whenever uploads pause, and after
every group once the inbox holds more than its bound, so that under sustained load storing
keeps pace and the inbox stays bounded. A chunk is one transaction. An engine error (a lock,
a full disk, I/O) leaves the rows where they are, to be stored when the database takes them
again. An inbox row that breaks the projection for another reason (a bug: its verdict let
through what cannot be stored) is tried alone and then record by record: each record that
still breaks is quarantined alone as `internal`, with its seq, and its neighbours are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from daozhang.collector.ingest import Ack, IngestResult, ingest_batch, ingest_record_by_record
from daozhang.collector.log import log
from daozhang.collector.verify import Verdict
from daozhang.collector.writer import GroupWriter, Query
from daozhang.store import Store, Transaction, is_transient

_INSERT = (
    "INSERT INTO inbox (dev, epoch, seq_from, seq_to, body, received_at, collector)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_EVERY_ROW = 2**62  # a device's whole inbox, before an upload of it takes the full path


def accept(
    tx: Transaction,
    w: GroupWriter,
    verdict: Verdict,
    received_at: float,
    collector: str,
) -> Ack | None:
    """Keep the upload in the inbox and move the ack over it; None if the verdict names no
    inbox run, or its seqs leave a hole, or the device's run has one (the full path then reads
    back what joins up).

    `max_seen` stays where the stored records leave it: `project` must find these seqs new.
    """
    run = verdict.inbox
    if run is None:
        return None
    state = w.state(tx, verdict.dev, run.epoch, received_at)
    if state.max_seen > state.upto or run.seq_from > state.upto + 1:
        return None
    w.add(
        _INSERT,
        (verdict.dev, run.epoch, run.seq_from, run.seq_to, verdict.body, received_at, collector),
    )
    state.upto = max(state.upto, run.seq_to)
    w.seen(verdict.dev, received_at, [])
    return Ack(verdict.dev, run.epoch, state.upto)


def ingest_upload(
    tx: Transaction,
    w: GroupWriter,
    dev: str,
    payload: bytes,
    received_at: float,
    *,
    collector: str,
    require_key: bool,
    verdict: Verdict | None = None,
    inbox: bool = False,
) -> list[IngestResult]:
    """One upload of `dev`: with `inbox`, acked from the inbox when its `verdict` (judged
    under the key the store still holds) names a run that continues the device's; else stored
    by `ingest_batch` after the device's inbox rows. The results of those rows come first."""
    if inbox and verdict is not None and verdict.valid_for(w.device(tx, dev)):
        ack = accept(tx, w, verdict, received_at, collector)
        run = verdict.inbox
        if ack is not None and run is not None:
            accepted = run.seq_to - run.seq_from + 1
            return [IngestResult("up", dev, acks=[ack], accepted=accepted)]
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
        verdict=verdict,
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


class Projector:
    def __init__(self, collector: str, chunk_records: int) -> None:
        self.collector = collector
        self.chunk_records = chunk_records

    def chunk(self, store: Store) -> Projection:
        """Store about `chunk_records` records of the oldest inbox rows, of any device.

        Transient database errors propagate: the caller reopens its store and calls again.
        """
        try:
            return self._project(store, self.chunk_records)
        except Exception as exc:  # isolate the row that breaks it
            if is_transient(exc):
                raise
            log(f"an inbox row broke the projection ({exc!r}); storing the oldest alone")
            return self._project_alone(store)

    def _project(self, store: Store, records: int) -> Projection:
        writer = GroupWriter()
        with store.transaction() as tx:
            done = project(tx, writer, records=records)
            writer.flush(tx)
        return done

    def _project_alone(self, store: Store) -> Projection:
        """The oldest inbox row alone; if it fails again, record by record, each record that
        breaks quarantined alone with its seq (`ingest_record_by_record`): its neighbours are
        stored, and every seq stays accounted for (they were acked)."""
        try:
            return self._project(store, 1)
        except Exception as exc:  # a poison row must not stall the inbox
            if is_transient(exc):
                raise
            found = store.query(
                "SELECT id, dev, seq_from, seq_to, body, received_at, collector FROM inbox"
                " ORDER BY id LIMIT 1"
            )
            if not found:
                return Projection([], 0)
            row_id, dev, seq_from, seq_to, body, received_at, collector = found[0]
            log(f"inbox row {row_id} of {dev} broke the projection ({exc!r}); record by record")
            result = ingest_record_by_record(
                store,
                str(dev),
                bytes(body),
                float(received_at),
                collector=str(collector),
                verified=True,
            )
            with store.transaction() as tx:
                tx.execute("DELETE FROM inbox WHERE id = ?", (row_id,))
            result.acks = []  # sent when the row came in
            result.projected = True
            return Projection([result], int(seq_to) - int(seq_from) + 1)
