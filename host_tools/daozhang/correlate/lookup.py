"""One support question answered, the same for `daozhang lookup` and the console's lookup form:
which transactions fit it (search.py), their findings classified with only what the rules
read for them (scope.py), and the receipts the collector refused that fit it too.

A refused receipt is in no finding (the collector never stored it): without it support would
say "no such sale" about a receipt that did reach the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daozhang.collector.quarantine_read import Refusal, refused_receipts
from daozhang.correlate.classify import Finding
from daozhang.correlate.scope import Scoped, analyse_scoped
from daozhang.correlate.search import MAX_MATCHES, Match, Query, search
from daozhang.store import Store


@dataclass
class Looked:
    matches: list[Match]  # best first, at most MAX_MATCHES
    more: bool  # the search found more than MAX_MATCHES
    scoped: Scoped
    refused: list[tuple[Refusal, dict[str, Any]]]

    def finding(self, m: Match) -> Finding | None:
        """The match's transaction finding."""
        for f in self.scoped.findings:
            if f.kind != "transaction":
                continue
            if m.key is not None and f.receipt is not None:
                r = f.receipt
                if (r.mid, r.tid, r.bat, r.trc) == m.key:
                    return f
            elif m.row is not None and f.row is not None and (f.row.file_id, f.row.line) == m.row:
                return f
        return None

    def payout(self, f: Finding) -> Finding | None:
        """The finding of the payout that holds `f`."""
        return next(
            (p for p in self.scoped.findings if p.kind == "payout" and p.payout_id == f.payout_id),
            None,
        )


def look_up(
    store: Store,
    q: Query,
    as_of: float | None,
    policy_file: Path | None = None,
    calendar_file: Path | None = None,
) -> Looked:
    matches = search(store, q)
    more = len(matches) > MAX_MATCHES
    matches = matches[:MAX_MATCHES]
    scoped = analyse_scoped(
        store,
        as_of,
        keys=[m.key for m in matches if m.key is not None],
        rows=[m.row for m in matches if m.row is not None],
        policy_file=policy_file,
        calendar_file=calendar_file,
    )
    refused = [(r, body) for r, body in refused_receipts(store) if refused_match(q, body)]
    return Looked(matches, more, scoped, refused)


def refused_match(q: Query, body: dict[str, Any]) -> bool:
    """The same question asked of a receipt body as the device sent it (refused receipts)."""
    pan, amt, lt = body.get("pan"), body.get("amt"), body.get("lt")
    if q.order is not None:
        return body.get("ord") == q.order
    checks = (
        (q.rrn, body.get("rrn")),
        (q.tid, body.get("tid")),
        (q.trace, body.get("trc")),
        (q.mid, body.get("mid")),
        (q.fen, amt),
    )
    if any(want is not None and want != got for want, got in checks):
        return False
    if q.last4 is not None and not (isinstance(pan, str) and pan.endswith(q.last4)):
        return False
    if q.lo is not None and q.hi is not None:
        return isinstance(lt, int) and q.lo <= lt <= q.hi
    return True
