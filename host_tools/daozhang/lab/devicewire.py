"""The device's side of the wire, in CPython: records and batches exactly as DESIGN §1.2-1.3.

The firmware builds these on the terminal; the host needs the same bytes to load generated
data, to drive the collector in tests and benchmarks, and to play a device byte for byte.
A record is encoded once and its bytes are reused verbatim in every (re)send, as the journal
does: the collector recognises a resend by identical bytes.
"""

from __future__ import annotations

from typing import Any

import cbor2

from daozhang.collector.wire import cbor_head, mac_of


def record_bytes(
    seq: int, kind: str, body: dict[str, Any], t: int = 0, boot: int = 1, up: int = 0
) -> bytes:
    return cbor2.dumps({"seq": seq, "k": kind, "t": t, "boot": boot, "up": up, "b": body})


def receipt_body(
    n: int, mid: str = "898310048161234", tid: str = "10000001", **extra: Any
) -> dict[str, Any]:
    """A plausible approved card sale; `n` makes its natural key and RRN unique."""
    body: dict[str, Any] = {
        "mid": mid,
        "tid": tid,
        "bat": "000001",
        "trc": f"{n % 1_000_000:06d}",
        "typ": "sale",
        "amt": 100 + n % 50_000,
        "cur": "CNY",
        "pan": "622848******1234",
        "ck": "D",
        "ent": "051",
        "lt": 1_780_000_000 + n,
        "st": "approved",
        "rc": "00",
        "rrn": f"{n % 10**12:012d}",
        "auth": f"{n % 1_000_000:06d}",
    }
    body.update(extra)
    return body


def batch_bytes(
    dev: str,
    epoch: int,
    recs: list[bytes],
    *,
    boot: int = 1,
    gaps: list[list[int]] | None = None,
    key: bytes | None = None,
) -> bytes:
    """`{v, dev, epoch, boot, recs, gaps?}` with the records' own bytes, plus the HMAC if keyed."""
    fields: list[bytes] = [
        cbor2.dumps("v") + cbor2.dumps(1),
        cbor2.dumps("dev") + cbor2.dumps(dev),
        cbor2.dumps("epoch") + cbor2.dumps(epoch),
        cbor2.dumps("boot") + cbor2.dumps(boot),
        cbor2.dumps("recs") + cbor_head(4, len(recs)) + b"".join(recs),
    ]
    if gaps:
        fields.append(cbor2.dumps("gaps") + cbor2.dumps(gaps))
    body = cbor_head(5, len(fields)) + b"".join(fields)
    return body + mac_of(key, body) if key is not None else body


def heartbeat_bytes(dev: str, **fields: Any) -> bytes:
    hb: dict[str, Any] = {"v": 1, "dev": dev, "t": 0, "epoch": 0, "fw": "test", "boot": 1}
    hb.update(fields)
    return cbor2.dumps(hb)
