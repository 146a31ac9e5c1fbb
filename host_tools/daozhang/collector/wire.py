"""Bytes on the wire: topics, the MAC, CBOR with limits, and the ack payload (DESIGN §1.3).

Everything here is pure: no database, no MQTT. Decoding never trusts a length or a depth from
the sender: the payload size is bounded first, the MAC (when the device has a key) is checked
on the raw bytes before any decoding, and cbor2 runs with a depth limit, no indefinite
lengths, no duplicate map keys, and no semantic tags at all.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import cbor2

from daozhang import contract

MAX_BATCH_BYTES = contract.MAX_BATCH_BYTES  # DESIGN §1.3
MAC_BYTES = 32
MAX_RECORD_BYTES = contract.MAX_RECORD_BYTES  # DESIGN §1.2
MAX_HEARTBEAT_BYTES = 2048
MAX_STATUS_BYTES = 16
# `offline EPOCH.BOOT.SESSION` (three counters of at most 12 digits) + a 32-byte HMAC.
MAX_SIGNED_STATUS_BYTES = 7 + 1 + 38 + 32
MAX_DEPTH = 8  # interface A: depth <= 8
MAX_BATCH_KEYS = 16  # v dev epoch boot recs gaps, and room for keys newer firmware adds
QUARANTINE_KEEP_BYTES = 65536  # what a quarantine row keeps of an oversized message

TOPIC_PREFIX = "dz/v1/"
DEV_PATTERN = re.compile(r"[A-Za-z0-9_-]{4,32}")


class WireError(Exception):
    """A message is not what the contract allows; `reason` is the quarantine reason."""

    def __init__(self, reason: str, detail: str, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.secrets = secrets  # full PANs found: masked before the bytes are kept


def parse_topic(topic: str) -> tuple[str, str]:
    """`dz/v1/{dev}/{channel}` -> (dev, channel); WireError("topic") otherwise."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "dz" or parts[1] != "v1":
        raise WireError("topic", f"not a dz/v1/{{dev}}/{{channel}} topic: {topic[:80]!r}")
    if not DEV_PATTERN.fullmatch(parts[2]):
        raise WireError("topic", f"device id {parts[2][:40]!r} is not [A-Za-z0-9_-]{{4,32}}")
    return parts[2], parts[3]


def upload_device(topic: str) -> str | None:
    """The device of an upload topic (`dz/v1/{dev}/up`), else None (a bad topic is refused
    where the message is ingested, with its quarantine row)."""
    try:
        dev, channel = parse_topic(topic)
    except WireError:
        return None
    return dev if channel == "up" else None


def mac_of(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def split_mac(payload: bytes, key: bytes | None) -> bytes:
    """The batch bytes of a payload, after checking its trailing HMAC when there is a key."""
    if key is None:
        return payload
    if len(payload) <= MAC_BYTES:
        raise WireError("mac", f"{len(payload)} bytes: too short to carry a 32-byte HMAC")
    body, tag = payload[:-MAC_BYTES], payload[-MAC_BYTES:]
    # compare_digest: the time taken must not tell a forger how many bytes were right.
    if not hmac.compare_digest(mac_of(key, body), tag):
        raise WireError("mac", "HMAC-SHA256 does not match the device's key")
    return body


def _refuse_tag(decoder: Any, tag: Any = None) -> Any:
    raise cbor2.CBORDecodeError("CBOR tags are not part of the contract")


# cbor2 decodes well-known tags (dates, bignums, regexes, ...) before any hook sees them;
# overriding every tag number up to 1100 (plus the self-describe tag) turns them all into
# errors, and `tag_hook` refuses the rest.
_NO_TAGS = {tag: _refuse_tag for tag in (*range(1100), 55799)}

_DECODE_ERRORS = (
    cbor2.CBORDecodeError,
    ValueError,
    TypeError,
    OverflowError,
    RecursionError,
    LookupError,
    MemoryError,
)


def _decoder(data: bytes) -> tuple[cbor2.CBORDecoder, io.BytesIO]:
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        stream,
        tag_hook=_refuse_tag,
        semantic_decoders=_NO_TAGS,
        max_depth=MAX_DEPTH,
        allow_indefinite=False,
        allow_duplicate_keys=False,
        strict_hashable_types=True,
    )
    return decoder, stream


def decode_leading(data: bytes, what: str) -> tuple[Any, int]:
    """The first CBOR item of `data` with the contract's limits, and how many bytes follow it."""
    decoder, stream = _decoder(data)
    try:
        value = decoder.decode()
    except _DECODE_ERRORS as exc:
        raise WireError("cbor", f"{what}: {exc}") from exc
    return value, len(data) - stream.tell()


def decode(data: bytes, what: str) -> Any:
    """One complete CBOR item with the contract's limits; WireError("cbor") otherwise."""
    value, trailing = decode_leading(data, what)
    if trailing:
        raise WireError("cbor", f"{what}: {trailing} bytes after the item")
    return value


class RawRecord(NamedTuple):
    """One element of a batch's `recs`, with the exact bytes the device sent for it."""

    raw: bytes
    value: Any


@dataclass(frozen=True)
class Batch:
    fields: dict[str, Any]  # every top-level key except `recs`
    recs: list[RawRecord]


def _head(data: bytes, pos: int, major: int, what: str) -> tuple[int, int]:
    """The argument of the definite-length CBOR head at `pos` of the given major type."""
    if pos >= len(data):
        raise WireError("cbor", f"{what}: truncated")
    initial = data[pos]
    if initial >> 5 != major:
        raise WireError("cbor", f"{what}: expected major type {major}, found {initial >> 5}")
    info = initial & 0x1F
    if info < 24:
        return info, pos + 1
    width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if width is None or pos + 1 + width > len(data):
        raise WireError("cbor", f"{what}: bad or truncated length")
    return int.from_bytes(data[pos + 1 : pos + 1 + width], "big"), pos + 1 + width


def decode_batch(data: bytes) -> Batch:
    """Split a batch into its fields and its records, keeping each record's exact bytes.

    The record bytes matter: a resend is recognised by identical bytes, and quarantine keeps
    what the device sent. cbor2's decoder reads one item at a time from the stream, so the
    stream position brackets each record. Bytes that do not decode make the whole batch
    malformed: without a sound structure no record boundary can be trusted.
    """
    count, pos = _head(data, 0, 5, "batch")
    if count > MAX_BATCH_KEYS:
        raise WireError("cbor", f"batch: map of {count} keys")
    decoder, stream = _decoder(data)
    stream.seek(pos)
    fields: dict[str, Any] = {}
    recs: list[RawRecord] | None = None
    try:
        for _ in range(count):
            key = decoder.decode()
            if not isinstance(key, str):
                raise WireError("schema", f"batch: non-text key {key!r:.40}")
            if key in fields or (key == "recs" and recs is not None):
                raise WireError("cbor", f"batch: duplicate key {key!r:.40}")
            if key != "recs":
                fields[key] = decoder.decode()
                continue
            n, start = _head(data, stream.tell(), 4, "batch.recs")
            if n > len(data):
                raise WireError("cbor", f"batch.recs: {n} items cannot fit")
            stream.seek(start)
            recs = []
            for _ in range(n):
                begin = stream.tell()
                value = decoder.decode()
                recs.append(RawRecord(data[begin : stream.tell()], value))
    except _DECODE_ERRORS as exc:
        raise WireError("cbor", f"batch: {exc}") from exc
    if stream.tell() != len(data):
        raise WireError("cbor", f"batch: {len(data) - stream.tell()} bytes after the map")
    if recs is None:
        raise WireError("schema", "batch: no `recs`")
    return Batch(fields=fields, recs=recs)


def cbor_head(major: int, value: int) -> bytes:
    """A CBOR item's head: major type and length (records are spliced in as the bytes they are)."""
    if value < 24:
        return bytes([major << 5 | value])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes([major << 5 | info]) + value.to_bytes(width, "big")
    raise ValueError(f"{value} does not fit a CBOR head")


def encode_batch(fields: dict[str, Any], recs: list[bytes]) -> bytes:
    """A batch of `fields` whose `recs` are these exact record bytes (no MAC)."""
    parts = [cbor2.dumps(k) + cbor2.dumps(v) for k, v in fields.items()]
    parts.append(cbor2.dumps("recs") + cbor_head(4, len(recs)) + b"".join(recs))
    return cbor_head(5, len(parts)) + b"".join(parts)


def encode_ack(epoch: int, upto: int, now: float) -> bytes:
    """CBOR `{v: 1, epoch, upto, now}` (DESIGN §1.3)."""
    return cbor2.dumps({"v": 1, "epoch": epoch, "upto": upto, "now": int(now)})
