"""A command's bytes and its answer's (DESIGN §1.5): CBOR, then HMAC-SHA256 with the device key.

The device checks the MAC before it decodes anything, then `dev`, then that `n` is above the
highest counter it ran; the host trusts an answer only with a good MAC and its own `n`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import cbor2

from daozhang import contract

MAC_BYTES = 32


def mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def encode_command(key: bytes, dev: str, n: int, op: str, settings: dict[str, int]) -> bytes:
    if op not in contract.COMMAND_OPS:
        raise ValueError(f"unknown command {op!r}")
    if not 1 <= n <= contract.COMMAND_MAX_N:
        raise ValueError(f"command counter {n} out of range")
    body: dict[str, Any] = {"v": 1, "dev": dev, "n": n, "op": op, **settings}
    data = cbor2.dumps(body)
    return data + mac(key, data)


@dataclass(frozen=True)
class Answer:
    """A device's answer as received: `verified` when its MAC checked with the device's key."""

    dev: str
    n: int
    ok: bool
    why: str | None
    seen: int | None
    verified: bool


def decode_answer(dev: str, key: bytes | None, payload: bytes) -> Answer | None:
    """The answer in `payload` from `dev`'s reply topic, or None when it is not one."""
    verified = False
    data = payload
    if key is not None and len(payload) > MAC_BYTES:
        body = payload[:-MAC_BYTES]
        if hmac.compare_digest(mac(key, body), payload[-MAC_BYTES:]):
            data, verified = body, True
    try:
        msg = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(msg, dict) or msg.get("v") != 1 or msg.get("dev") != dev:
        return None
    n, ok, why, seen = msg.get("n"), msg.get("ok"), msg.get("why"), msg.get("seen")
    if type(n) is not int or type(ok) is not bool:
        return None
    if why is not None and why not in contract.COMMAND_REFUSALS:
        why = "?"
    return Answer(dev, n, ok, why, seen if type(seen) is int else None, verified)
