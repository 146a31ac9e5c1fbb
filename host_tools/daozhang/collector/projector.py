"""Storing the inbox behind the acks (inbox.py), in chunks, for the collector's committer.

The committer acks from the inbox while uploads flow and stores a chunk whenever they pause;
once the inbox holds more than its bound, after every group too, so that under sustained load
storing keeps pace and the inbox stays bounded. A chunk is one transaction: its records are
stored and its inbox rows deleted together.

An inbox row that breaks the projection for a reason other than the database (a bug: the
screen let through what ingest cannot take) is tried alone and then quarantined with its
bytes and the reason `internal`, like a message that breaks ingest: it must not stall the
inbox, and its seqs stay accounted for (they were acked).
"""

from __future__ import annotations

from daozhang.collector.inbox import Projection, project
from daozhang.collector.ingest import IngestResult
from daozhang.collector.quarantine import quarantine
from daozhang.collector.subscription import log
from daozhang.collector.writer import GroupWriter
from daozhang.store import Store, is_transient


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
        """The oldest inbox row alone; if it fails again, it goes to quarantine."""
        try:
            return self._project(store, 1)
        except Exception as exc:  # a poison row must not stall the inbox
            if is_transient(exc):
                raise
            with store.transaction() as tx:
                found = tx.execute(
                    "SELECT id, dev, epoch, seq_from, seq_to, body, received_at FROM inbox"
                    " ORDER BY id LIMIT 1"
                )
                if not found:
                    return Projection([], 0)
                row_id, dev, epoch, seq_from, seq_to, body, received_at = found[0]
                log(f"quarantined inbox row {row_id} of {dev} after an internal error: {exc!r}")
                quarantine(
                    tx,
                    dev=str(dev),
                    topic=f"dz/v1/{dev}/up",
                    reason="internal",
                    detail=f"acked seqs {seq_from}-{seq_to} of epoch {epoch}: {exc!r}",
                    raw=bytes(body),
                    received_at=float(received_at),
                    collector=self.collector,
                )
                tx.execute("DELETE FROM inbox WHERE id = ?", (row_id,))
            result = IngestResult("up", str(dev), quarantined=["internal"], projected=True)
            return Projection([result], int(seq_to) - int(seq_from) + 1)
