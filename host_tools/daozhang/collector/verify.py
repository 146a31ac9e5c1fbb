"""The collector's one gate: `verify(upload, device) -> Verdict` judges an upload.

A verdict says, with no database (only the device's entry in the key store):
- **refuse**: the batch fails before its records (topic, size, the device's key and the MAC on
  the raw bytes before any decoding, CBOR with limits, the header): it is quarantined whole and
  moves no ack (`refusal`);
- per record, in batch order, **accept** (a `Record`, to be stored) or **quarantine** (a
  `Refused`, kept with its reason and accounted for by its seq) (`records`);
- `inbox`: the seqs an ack may cover before any record is stored (the fast ack path), when the
  upload is one ascending run without gaps whose bytes hold no full PAN, and its epoch.

The fast ack path and the full path are two uses of one verdict: the inbox acks `inbox` at
once and stores the records later by verifying the kept bytes again; the full path stores
`records` before its ack. Whether a record is *new* (a resend, a conflict) needs the store and
is ingest's question (ingest.py).

The collector verifies as it takes a message, outside the write transaction, so that the lock
is held for the writes alone; ingest reuses the verdict only when the key store still holds the
key it was judged under (`valid_for`). The record checks run once per key over the whole batch
(`check_batch`); any doubt falls back to the rules of `validate.py` record by record, which
find which record failed and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, repeat
from typing import Any, NamedTuple

from daozhang.collector.keys import DeviceInfo
from daozhang.collector.pan_check import (
    has_other_digits,
    holds_pan_like_run,
    id_pieces,
    scan_for_full_pan,
)
from daozhang.collector.validate import (
    INT64_MAX,
    RECEIPT_ENUM,
    RECEIPT_ID,
    RECEIPT_INT,
    RECEIPT_REQUIRED,
    RECEIPT_SPEC,
    RECEIPT_TEXT,
    RECORD_INT_MAX,
    BatchHeader,
    Record,
    check_batch_header,
    check_dev,
    check_diag,
    check_record,
    check_storable,
    seq_of,
)
from daozhang.collector.wire import (
    MAC_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_KEYS,
    MAX_RECORD_BYTES,
    Batch,
    RawRecord,
    WireError,
    decode,
    decode_batch,
    split_mac,
)


@dataclass(frozen=True)
class Upload:
    """What came on `dz/v1/{dev}/up`: the topic's device and the payload as delivered."""

    dev: str
    payload: bytes


class Refused(NamedTuple):
    """A record of an authentic batch that is quarantined (and accounted for, if it has a seq)."""

    seq: int | None
    raw: bytes
    error: WireError


class InboxRun(NamedTuple):
    """The seqs of an upload the inbox may ack before storing it, and their epoch."""

    epoch: int
    seq_from: int
    seq_to: int


class Verdict:
    """The judgement of one upload; see the module's docstring. Each part is worked out on
    first use: an upload the inbox acks is split into records only when it is stored."""

    def __init__(
        self, dev: str, key: bytes | None, refusal: WireError | None = None, body: bytes = b""
    ) -> None:
        self.dev = dev
        self.key = key  # the HMAC key it was judged under: all it depends on in the key store
        self._refusal = refusal  # found before decoding: topic, size, key, MAC
        self.body = body  # the batch bytes, MAC checked and stripped

    def valid_for(self, device: DeviceInfo) -> bool:
        return self.key == device.key

    @cached_property
    def _parsed(self) -> tuple[Batch, BatchHeader] | WireError:
        if self._refusal is not None:
            return self._refusal
        try:
            batch = decode_batch(self.body)
            return batch, check_batch_header(batch.fields, self.dev)
        except WireError as exc:
            return exc

    @property
    def refusal(self) -> WireError | None:
        """Why the batch is refused as a whole (quarantined whole, no ack), or None."""
        parsed = self._parsed
        return parsed if isinstance(parsed, WireError) else None

    def authentic(self) -> tuple[Batch, BatchHeader]:
        """The batch (records with their exact bytes) and its header; the refusal otherwise."""
        parsed = self._parsed
        if isinstance(parsed, WireError):
            raise parsed
        return parsed

    @cached_property
    def records(self) -> list[Record | Refused]:
        """Each record accepted or refused, in batch order (empty for a refused batch)."""
        parsed = self._parsed
        if isinstance(parsed, WireError):
            return []
        accepted = self.all_accepted
        if accepted is not None:
            return list(accepted)
        return [_check_one(r) for r in parsed[0].recs]

    @cached_property
    def all_accepted(self) -> list[Record] | None:
        """Every record, when all are accepted and no seq comes twice; else None."""
        parsed = self._parsed
        return None if isinstance(parsed, WireError) else check_batch(parsed[0].recs)

    @property
    def record_count(self) -> int:
        parsed = self._parsed
        return 0 if isinstance(parsed, WireError) else len(parsed[0].recs)

    @cached_property
    def inbox(self) -> InboxRun | None:
        """The seqs the whole upload may be acked for before it is stored, or None.

        Read with one C-speed decode of the whole batch, not the split with exact bytes that
        storing needs (about twice the cost): the same decoder limits, and every shape the
        split refuses is refused here too (no run), so this says yes only where `authentic()`
        does, with the same seqs (tests/collector/test_inbox.py holds the two together).
        """
        if self._refusal is not None:
            return None
        try:
            batch = decode(self.body, "batch")
        except WireError:
            return None
        if type(batch) is not dict or len(batch) > MAX_BATCH_KEYS:
            return None
        recs = batch.get("recs")
        if type(recs) is not list or not recs or set(map(type, batch)) != {str}:
            return None
        try:
            fields = {k: v for k, v in batch.items() if k != "recs"}
            header = check_batch_header(fields, self.dev)
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
        # A full PAN must be masked before any bytes are kept: the record checks do that, so
        # an upload holding a Luhn-valid digit run (other than a merchant id), or digits
        # beyond ASCII that the byte scan cannot see, is checked before it is kept.
        bodies = [r["b"] for r in recs if type(r.get("b")) is dict]
        mids = {b["mid"].encode() for b in bodies if type(b.get("mid")) is str}
        mids.update(chain.from_iterable(map(id_pieces, bodies)))
        if holds_pan_like_run(self.body, mids) or has_other_digits(*bodies):
            return None
        return InboxRun(header.epoch, first, last)


def verify(upload: Upload, device: DeviceInfo, *, require_key: bool) -> Verdict:
    """Judge an upload: topic, size, key and MAC now; the rest on first use."""
    try:
        body = authentic_body(device, upload.dev, upload.payload, require_key)
    except WireError as exc:
        return Verdict(upload.dev, device.key, refusal=exc)
    return Verdict(upload.dev, device.key, body=body)


def authentic_body(device: DeviceInfo, topic_dev: str, payload: bytes, require_key: bool) -> bytes:
    """The batch bytes, MAC checked and stripped: what may be decoded (topic, size, key)."""
    check_dev(topic_dev)
    key = device.key
    limit = MAX_BATCH_BYTES + (MAC_BYTES if key is not None else 0)
    if len(payload) > limit:
        raise WireError("too_large", f"{len(payload)} bytes > {limit}")
    # The key, not the row: a heartbeat or status message puts any device in `devices`.
    if key is None and require_key:
        raise WireError("unknown_device", f"{topic_dev!r} has no key in the device store")
    return split_mac(payload, key)


def _check_one(rec: RawRecord) -> Record | Refused:
    try:
        return check_record(rec.value, rec.raw)
    except WireError as exc:
        return Refused(seq_of(rec.value), rec.raw, exc)


# --- the record checks over a whole batch ----------------------------------------------------
#
# Checking record by record costs tens of microseconds of Python per record, more than storing
# it. Here each rule runs once per batch over a column of values (`set(map(type, ...))`, one
# regex over the joined texts, `min`/`max`), so the Python work is per key, not per record. It
# may only say yes: it returns the records exactly as `check_record` builds them when every
# record passes, and None as soon as anything is unusual; the per-record path then decides.
# tests/collector/test_batchcheck.py holds the two to the same verdicts.

# One pattern per text key matching the batch's values joined by "\n"; no item pattern can
# match "\n" itself, and the caller checks the count of separators, so a value holding "\n"
# cannot pose as two.
_JOINED_TEXT = {
    key: re.compile(f"(?:{rule.pattern})(?:\n(?:{rule.pattern}))*", re.ASCII)
    for key, rule in (*RECEIPT_TEXT.items(), *RECEIPT_ID.items())
}
# Receipts holding only these keys skip the PAN scan; the ids (`ord`, `xid`) may hold digit
# runs, so a body with one is scanned.
_RECEIPT_KEYS = frozenset(RECEIPT_SPEC) - frozenset(RECEIPT_ID)


def _all_uint(values: list[Any], low: int = 0, high: int = INT64_MAX) -> bool:
    # type() is exact: bool is an int subclass in Python but never a number in CBOR.
    return set(map(type, values)) == {int} and min(values) >= low and max(values) <= high


def check_batch(recs: list[RawRecord]) -> list[Record] | None:
    """Every record of the batch, checked; None when any one needs the per-record path."""
    if not recs:
        return None
    values = [r.value for r in recs]
    raws = [r.raw for r in recs]
    if set(map(type, values)) != {dict} or max(map(len, raws)) > MAX_RECORD_BYTES:
        return None
    get = dict.get
    seqs = list(map(get, values, repeat("seq")))
    columns = [list(map(get, values, repeat(key))) for key in RECORD_INT_MAX]
    in_range = all(map(_all_uint, columns, repeat(0), RECORD_INT_MAX.values()))
    if not _all_uint(seqs, 1) or not in_range or len(set(seqs)) < len(seqs):
        return None
    kinds = list(map(get, values, repeat("k")))
    bodies: list[Any] = list(map(get, values, repeat("b")))
    if set(map(type, bodies)) != {dict}:
        return None
    try:
        if not set(kinds) <= {"r", "d"}:
            return None
    except TypeError:  # an unhashable `k`
        return None
    receipts = [b for b, k in zip(bodies, kinds, strict=True) if k == "r"]
    if receipts and not _receipts_ok(receipts):
        return None
    try:
        for body, raw, kind in zip(bodies, raws, kinds, strict=True):
            if kind == "d":
                check_storable(body)
                check_diag(body)
                scan_for_full_pan(body, raw)
            elif not _RECEIPT_KEYS.issuperset(body):
                check_storable(body)
                scan_for_full_pan(body, raw)
            # else: every key is a known receipt field whose rule already passed (texts and
            # ints only), and none of those rules lets a 13-digit run through except `mid`:
            # no PAN and nothing unstorable can hide there.
    except WireError:
        return None
    ts, boots, ups = columns
    return list(map(Record, seqs, kinds, ts, boots, ups, bodies, raws))


def _receipts_ok(bodies: list[dict[str, Any]]) -> bool:
    keys = set(chain.from_iterable(bodies))
    if not keys.issuperset(RECEIPT_REQUIRED):
        return False
    for key in keys:
        pattern = _JOINED_TEXT.get(key)
        allowed = RECEIPT_ENUM.get(key)
        highest = RECEIPT_INT.get(key)
        if pattern is None and allowed is None and highest is None:
            continue  # unknown keys are kept and ignored
        present = [b[key] for b in bodies if key in b]
        if key in RECEIPT_REQUIRED and len(present) < len(bodies):
            return False
        if set(map(type, present)) != {str} and highest is None:
            return False
        if pattern is not None:
            joined = "\n".join(present)
            if joined.count("\n") != len(present) - 1 or not pattern.fullmatch(joined):
                return False
        elif allowed is not None:
            if not set(present) <= allowed:
                return False
        elif highest is not None and not _all_uint(present, 0, highest):
            return False
    return True
