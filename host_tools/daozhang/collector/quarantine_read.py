"""Reading the quarantine table back: what the collector refused, from whom, and why.

The rows are written by `collector.quarantine`; this module only reads them, for
`daozhang quarantine` and `fleet status`. The kept bytes never hold a full PAN (they were
masked before they were stored), so showing them is safe; decoding them uses the same CBOR
limits as the collector, because they are still a sender's bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from daozhang.collector.wire import MAC_BYTES, WireError, decode_leading
from daozhang.errors import UsageError
from daozhang.store import Store

_COLUMNS = (
    "id, dev, topic, reason, detail, epoch, seq, LENGTH(raw), received_at, last_at, repeats,"
    " collector"
)


@dataclass(frozen=True)
class Refusal:
    """One quarantine row without its bytes."""

    id: int
    dev: str | None
    topic: str
    reason: str
    detail: str
    epoch: int | None
    seq: int | None
    size: int  # bytes kept (an oversized message keeps only its start; `detail` says so)
    received_at: float  # first refused
    last_at: float  # last refused (the same bytes again)
    repeats: int
    collector: str


@dataclass(frozen=True)
class ReasonTotal:
    reason: str
    rows: int  # distinct refused messages or records
    refusals: int  # counting repeats


@dataclass(frozen=True)
class Decoded:
    """The kept bytes read as CBOR: the first item, or why they are not CBOR."""

    value: Any  # None when `error` is set
    trailing: int  # bytes after the first item
    error: str | None

    def trailer_note(self) -> str:
        if self.error is not None or not self.trailing:
            return ""
        if self.trailing == MAC_BYTES:
            return f"followed by {MAC_BYTES} bytes: the batch's HMAC trailer"
        return f"followed by {self.trailing} more bytes"


def _where(dev: str | None, reason: str | None, since: float | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for clause, value in (("dev = ?", dev), ("reason = ?", reason), ("last_at >= ?", since)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _refusal(row: tuple[Any, ...]) -> Refusal:
    id_, dev, topic, reason, detail, epoch, seq, size, received, last, repeats, coll = row
    return Refusal(
        id=int(id_),
        dev=dev,
        topic=topic,
        reason=reason,
        detail=detail,
        epoch=None if epoch is None else int(epoch),
        seq=None if seq is None else int(seq),
        size=int(size),
        received_at=float(received),
        last_at=float(last),
        repeats=int(repeats),
        collector=coll,
    )


def list_refusals(
    store: Store,
    *,
    dev: str | None = None,
    reason: str | None = None,
    since: float | None = None,
    limit: int = 50,
) -> list[Refusal]:
    """The most recently refused first."""
    where, params = _where(dev, reason, since)
    rows = store.query(
        f"SELECT {_COLUMNS} FROM quarantine{where} ORDER BY last_at DESC, id DESC LIMIT ?",
        [*params, limit],
    )
    return [_refusal(tuple(r)) for r in rows]


def reason_totals(
    store: Store,
    *,
    dev: str | None = None,
    reason: str | None = None,
    since: float | None = None,
) -> list[ReasonTotal]:
    """Per reason, over every row the filters match (not only the listed ones); most first."""
    where, params = _where(dev, reason, since)
    rows = store.query(
        f"SELECT reason, COUNT(*), SUM(repeats) FROM quarantine{where} GROUP BY reason",
        params,
    )
    totals = [ReasonTotal(str(r), int(n), int(k)) for r, n, k in rows]
    return sorted(totals, key=lambda t: (-t.refusals, t.reason))


def refusals_by_device(store: Store, since: float) -> dict[str, dict[str, int]]:
    """dev -> {reason: refusals} since `since`, for messages whose device is known."""
    result: dict[str, dict[str, int]] = {}
    for dev, reason, refusals in store.query(
        "SELECT dev, reason, SUM(repeats) FROM quarantine WHERE dev IS NOT NULL"
        " AND last_at >= ? GROUP BY dev, reason",
        (since,),
    ):
        result.setdefault(str(dev), {})[str(reason)] = int(refusals)
    return result


def get_refusal(store: Store, refusal_id: int) -> tuple[Refusal, bytes]:
    """One row and its kept bytes; UsageError if there is no such row."""
    rows = store.query(f"SELECT {_COLUMNS}, raw FROM quarantine WHERE id = ?", (refusal_id,))
    if not rows:
        raise UsageError(f"quarantine: no row with id {refusal_id}")
    *fields, raw = tuple(rows[0])
    return _refusal(tuple(fields)), bytes(raw)


def refused_receipts(store: Store) -> Iterator[tuple[Refusal, dict[str, Any]]]:
    """Every receipt body inside what was refused: a refused record, or a record inside a
    refused batch. Support staff need these when a receipt is missing from the store: a
    record refused from an authentic batch was acked and deleted from the terminal, so its
    quarantine row is the only trace of it; one inside a refused batch is still on the
    terminal, waiting for an ack that this batch will never get."""
    for row in store.query(f"SELECT {_COLUMNS}, raw FROM quarantine ORDER BY id"):
        *fields, raw = tuple(row)
        decoded = decode_kept(bytes(raw))
        if decoded.error is None:
            refusal = _refusal(tuple(fields))
            for body in _receipt_bodies(decoded.value):
                yield refusal, body


def _receipt_bodies(value: Any) -> Iterator[dict[str, Any]]:
    records = value.get("recs") if isinstance(value, dict) else None
    for record in records if isinstance(records, list) else [value]:
        if isinstance(record, dict) and record.get("k") == "r":
            body = record.get("b")
            if isinstance(body, dict):
                yield body


def decode_kept(raw: bytes) -> Decoded:
    try:
        value, trailing = decode_leading(raw, "kept bytes")
    except WireError as exc:
        return Decoded(None, 0, exc.detail)
    return Decoded(plain(value), trailing, None)


def plain(value: Any) -> Any:
    """A decoded CBOR value as JSON can hold it: byte strings as h'..' text (CBOR diagnostic
    notation), map keys as text, anything else JSON lacks as its repr."""
    if isinstance(value, bytes):
        return f"h'{value.hex()}'"
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return repr(value)  # CBOR's simple values (undefined, simple(n)) have no JSON form
