"""The part of a batch's ingest that needs no transaction: MAC, CBOR, header, record checks.

A collector prepares each message as it takes it from the queue, before it opens the write
transaction, so that the database lock (SQLite has one writer at a time) is held for the
writes alone and several collectors really share the work. The preparation is only a
proposal: it records the device key it was checked with, and ingest, inside the transaction,
uses it only when the key store still says the same; otherwise it checks the batch again.
"""

from __future__ import annotations

from dataclasses import dataclass

from daozhang.collector.batchcheck import check_batch
from daozhang.collector.validate import BatchHeader, Record, check_batch_header, check_dev
from daozhang.collector.wire import (
    MAC_BYTES,
    MAX_BATCH_BYTES,
    Batch,
    WireError,
    decode_batch,
    split_mac,
)


@dataclass(frozen=True)
class DeviceInfo:
    """A device's entry in the key store (key None: no key, or no entry at all)."""

    key: bytes | None
    mid: str | None
    tid: str | None


@dataclass(frozen=True)
class Prepared:
    key: bytes | None  # the HMAC key the checks assumed: all they depend on in the key store
    verdict: tuple[Batch, BatchHeader] | WireError  # the error: the batch fails as a whole
    checked: list[Record] | None  # every record passed (the batch fast path), else None

    def valid_for(self, device: DeviceInfo) -> bool:
        return self.key == device.key


def prepare_batch(
    device: DeviceInfo, topic_dev: str, payload: bytes, require_key: bool
) -> Prepared:
    """Check a batch from `dz/v1/{topic_dev}/up` as far as it goes without the store."""
    try:
        batch, header = authentic_batch(device, topic_dev, payload, require_key)
    except WireError as exc:
        return Prepared(device.key, exc, None)
    return Prepared(device.key, (batch, header), check_batch(batch.recs))


def authentic_batch(
    device: DeviceInfo, topic_dev: str, payload: bytes, require_key: bool
) -> tuple[Batch, BatchHeader]:
    """Topic, size, the MAC on the raw bytes before any decoding, then CBOR and the header."""
    batch = decode_batch(authentic_body(device, topic_dev, payload, require_key))
    header = check_batch_header(batch.fields, topic_dev)
    return batch, header


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
