"""The whole store classified a range of merchants at a time, in bounded memory (issue 24).

`chunks(store, ctx)` yields one `Chunk` per merchant range (chunk.py): its data and its
findings, final, ready for the reports, then dropped. The findings equal the whole-store
`classify`'s (tests/correlate/test_stream_equals_whole.py), because the one rule that looks
across merchants is held back: a transaction waiting on its acquirer (due, file imported, no
row or no payout) is `acquirer_side` only when enough merchants of its acquirer-day were
healthy around their sales, and those merchants lie in any chunk. So each chunk adds its
healthy waiting merchants to the acquirer-day's count and hands its waiting findings on (a
few thousand in ten million receipts); after the last chunk they are judged on the full
counts, their devices' timelines read again for the rest of the rules, and yielded last.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from daozhang.correlate.chunk import RECEIPTS_PER_CHUNK, Shared, load_range, ranges, timelines
from daozhang.correlate.chunk import shared as read_shared
from daozhang.correlate.classify import (
    AcquirerDay,
    Context,
    Finding,
    finish,
    healthy_merchants,
    judge_acquirer_day,
    judge_terminal_side,
    maintenance,
    payout_findings,
    waiting_by_day,
)
from daozhang.correlate.data import Data
from daozhang.correlate.render_fast import Renderer
from daozhang.store import Store, Transaction

_HELD_DEVICES = 400  # the held findings are finished this many devices at a time


@dataclass
class Chunk:
    data: Data  # what the findings were read from (payouts, rows, timelines), for reports
    findings: list[Finding]
    _texts: list[tuple[str, str]] | None = None
    _lines: list[str] | None = None

    def explained(self, renderer: Renderer) -> list[tuple[str, str]]:
        """The findings' explanations (zh, en), made once for every output."""
        if self._texts is None:
            self._texts = [renderer.explain(f) for f in self.findings]
        return self._texts

    def json_lines(self, renderer: Renderer) -> list[str]:
        """The findings as JSON text (render.to_dict's shape), made once for the JSON file and
        the recording."""
        if self._lines is None:
            line = renderer.json_line
            texts = self.explained(renderer)
            self._lines = [
                line(f, zh, en) for f, (zh, en) in zip(self.findings, texts, strict=True)
            ]
        return self._lines


def chunks(store: Store, ctx: Context, per_chunk: int = RECEIPTS_PER_CHUNK) -> Iterator[Chunk]:
    """Every finding of the store, a merchant range at a time (module doc)."""
    # The findings of a chunk hold no reference cycles and die with it: the cyclic collector
    # would only rescan hundreds of thousands of live objects again and again.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with store.snapshot() as tx:  # one view of the store for every chunk
            common = read_shared(store, tx)
            healthy: dict[AcquirerDay, set[str]] = defaultdict(set)
            held: dict[AcquirerDay, list[Finding]] = defaultdict(list)
            for span in ranges(tx, common.merchants, per_chunk):
                data = load_range(tx, common, span, ctx.as_of)
                findings, unpaid = judge_terminal_side(data, ctx)
                waiting: set[int] = set()
                for key, members in waiting_by_day(unpaid, data).items():
                    healthy[key] |= healthy_merchants(members, data)
                    held[key] += members
                    waiting.update(map(id, members))
                ready = [f for f in findings if id(f) not in waiting]
                finish(ready, data)
                payouts = payout_findings(data, ctx)
                maintenance([*ready, *payouts], data)
                yield Chunk(data, ready + payouts)
                del data, findings, unpaid, ready, payouts
            for key, members in held.items():
                judge_acquirer_day(key, members, healthy[key])
            yield from _finish_held([f for fs in held.values() for f in fs], tx, common, ctx)
    finally:
        if was_enabled:
            gc.enable()


def _finish_held(
    held: list[Finding], tx: Transaction, common: Shared, ctx: Context
) -> Iterator[Chunk]:
    """The rules after the acquirer's judgement, for the held findings, by device batches."""
    by_dev: dict[str, list[Finding]] = defaultdict(list)
    for f in held:
        by_dev[f.dev].append(f)
    devs = sorted(by_dev)
    for i in range(0, len(devs), _HELD_DEVICES):
        batch = devs[i : i + _HELD_DEVICES]
        lines = timelines(tx, set(batch), ctx.as_of)
        data = common.data([], [], [], {}, lines)
        found = [f for dev in batch for f in by_dev[dev]]
        finish(found, data)
        maintenance(found, data)
        yield Chunk(data, found)
