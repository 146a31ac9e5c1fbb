"""`analyse(store, as_of)`: read once, classify; `analyse_chunks`: the same findings a
merchant range at a time, in bounded memory; `record`/`Recorder` keep a run's findings."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from daozhang.correlate.chunk import RECEIPTS_PER_CHUNK
from daozhang.correlate.classify import Context, Finding, classify
from daozhang.correlate.data import Data, load
from daozhang.correlate.render_fast import Renderer
from daozhang.correlate.stream import Chunk, chunks
from daozhang.store import Store


@dataclass
class Result:
    as_of: int
    data: Data
    findings: list[Finding]


def analyse(
    store: Store,
    as_of: float | None = None,
    merchant: str | None = None,
    device: str | None = None,
    policy_file: Path | None = None,
    calendar_file: Path | None = None,
) -> Result:
    """Read the store and classify; the data is kept for reports (timelines)."""
    ctx = Context.of(as_of, policy_file, calendar_file)
    # Millions of small objects that live until the run ends: the cyclic collector would
    # rescan them again and again for nothing (they hold no cycles).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        # Always the whole store: acquirer_side compares merchants, so one merchant's view
        # alone would call an acquirer's bad day "unknown". The filter applies afterwards.
        data = load(store, as_of=ctx.as_of)
        findings = classify(data, ctx)
        if merchant is not None:
            findings = [f for f in findings if f.mid == merchant]
        if device is not None:
            findings = [f for f in findings if f.dev == device]
        return Result(ctx.as_of, data, findings)
    finally:
        if was_enabled:
            gc.enable()


def analyse_chunks(
    store: Store,
    as_of: float | None = None,
    merchant: str | None = None,
    device: str | None = None,
    policy_file: Path | None = None,
    calendar_file: Path | None = None,
    per_chunk: int = RECEIPTS_PER_CHUNK,
) -> tuple[int, Iterator[Chunk]]:
    """`analyse`'s findings a merchant range at a time, in bounded memory (stream.py): the
    run's as-of time, and the chunks, each to be used and dropped before the next."""
    ctx = Context.of(as_of, policy_file, calendar_file)

    def only(found: Iterator[Chunk]) -> Iterator[Chunk]:
        for c in found:
            if merchant is None and device is None:
                yield c
                continue
            kept = [f for f in c.findings if merchant in (None, f.mid) and device in (None, f.dev)]
            yield Chunk(c.data, kept)

    return ctx.as_of, only(chunks(store, ctx, per_chunk))


def record(store: Store, as_of: float, findings: Iterable[Finding]) -> int:
    """Write the run's findings to the `findings` table; return the run id."""
    out = Recorder(store, as_of)
    out.add(findings)
    return out.close()


class Recorder:
    """A run's findings written as they come, a batch a transaction: a run of ten million
    findings neither sits in memory nor holds the one write lock against the collectors for
    minutes. The run's row says `n_findings = -1` until its last batch is in, so that a
    reader of the latest run (alert_gauges) never takes a half-written one."""

    BATCH = 5_000

    def __init__(self, store: Store, as_of: float) -> None:
        self.store = store
        with store.transaction() as tx:
            tx.execute(
                "INSERT INTO correlate_runs (as_of, ran_at, n_findings) VALUES (?, ?, -1)",
                (as_of, time.time()),
            )
            self.run_id = int(tx.execute("SELECT MAX(id) FROM correlate_runs")[0][0])
        self.rows: list[tuple[object, ...]] = []
        self.n = 0
        self.renderer = Renderer()

    def add(self, findings: Iterable[Finding], lines: Iterable[str] = ()) -> None:
        """These findings recorded, each with its JSON text (render.to_dict's shape, from
        render_fast.py: `lines`, when already made)."""
        made = iter(lines)
        r = self.renderer
        for f in findings:
            body = next(made, None) or r.json_line(f, *r.explain(f))
            self.rows.append(
                (self.run_id, self.n, f.kind, f.mid, f.tid, f.bat, f.trc, f.dev, f.rrn,
                 f.payout_id, f.status, f.cause, f.data, body)
            )  # fmt: skip
            self.n += 1
            if len(self.rows) >= self.BATCH:
                self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        with self.store.transaction() as tx:
            tx.executemany(
                "INSERT INTO findings (run_id, n, kind, mid, tid, bat, trc, dev, rrn, payout_id,"
                " status, cause, data, body_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.rows,
            )
        self.rows = []

    def close(self) -> int:
        """The last batch, then the run's count: the run is complete; its id."""
        self._flush()
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE correlate_runs SET n_findings = ? WHERE id = ?", (self.n, self.run_id)
            )
        return self.run_id
