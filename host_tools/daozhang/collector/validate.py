"""The schema of each message kind (DESIGN §1.2, §1.3), checked after decoding.

A check either returns a normalised value or raises `WireError(reason, detail)`; the detail
names the field. Unknown keys are kept and ignored (newer firmware may add them); a known key
must have its documented type and shape. Full PANs are refused everywhere: a 13-19 digit run
that passes the Luhn check in any text of a record is a `pan_unmasked` violation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from daozhang import contract
from daozhang.collector.pan_check import DIGIT_RUN, check_no_full_pan, scan_for_full_pan
from daozhang.collector.wire import DEV_PATTERN, MAX_RECORD_BYTES, WireError

INT64_MAX = 2**63 - 1
EPOCH_MAX = 2**32 - 1
MAX_GAPS = 64
# Real ranges for a record's clock fields, so that whatever passes can be stored: a time placed
# from uptime (`t` + `up` difference / 1000, placement.py) then stays far inside a 64-bit column.
# 2^40 s is beyond the year 36000; 2^48 ms of uptime is some 8,900 years since a boot.
T_MAX = 2**40
UP_MAX = 2**48
RECORD_INT_MAX = {"t": T_MAX, "boot": INT64_MAX, "up": UP_MAX}
# What a body may hold, at any depth: the types a CBOR decoder gives for the contract's items.
# CBOR's `undefined` and other simple values have no column or JSON form; byte strings do (hex).
_STORABLE_LEAF = (str, int, bool, float, bytes, type(None))


def is_int(value: Any, low: int = 0, high: int = INT64_MAX) -> bool:
    # bool is an int subclass in Python; in CBOR it is a distinct type and never a number here.
    return type(value) is int and low <= value <= high


class Record(NamedTuple):
    """A record that passed its checks (a tuple: one is built per record at ingest rate)."""

    seq: int
    kind: str  # "r" or "d"
    t: int
    boot: int
    up: int
    body: dict[str, Any]
    raw: bytes


@dataclass(frozen=True)
class BatchHeader:
    epoch: int
    boot: int
    gaps: list[tuple[int, int]]


def check_batch_header(fields: dict[str, Any], topic_dev: str) -> BatchHeader:
    if fields.get("v") != 1 or type(fields.get("v")) is not int:
        raise WireError("version", f"batch v={fields.get('v')!r:.20}; only v=1 is understood")
    dev = fields.get("dev")
    if not isinstance(dev, str):
        raise WireError("schema", "batch.dev: missing or not text")
    if dev != topic_dev:
        raise WireError("dev_mismatch", f"batch.dev {dev[:40]!r} on the topic of {topic_dev!r}")
    epoch = fields.get("epoch")
    if not is_int(epoch, 0, EPOCH_MAX):
        raise WireError("schema", f"batch.epoch: {epoch!r:.30} is not a 32-bit unsigned int")
    boot = fields.get("boot")
    if not is_int(boot):
        raise WireError("schema", f"batch.boot: {boot!r:.30} is not an unsigned int")
    gaps: list[tuple[int, int]] = []
    raw_gaps = fields.get("gaps", [])
    if not isinstance(raw_gaps, list) or len(raw_gaps) > MAX_GAPS:
        raise WireError("schema", f"batch.gaps: not a list of at most {MAX_GAPS} ranges")
    for i, gap in enumerate(raw_gaps):
        if (
            not isinstance(gap, list)
            or len(gap) != 2
            or not is_int(gap[0], 1)
            or not is_int(gap[1], 1)
            or gap[0] > gap[1]
        ):
            raise WireError("schema", f"batch.gaps[{i}]: {gap!r:.40} is not [from, to]")
        gaps.append((gap[0], gap[1]))
    return BatchHeader(epoch=epoch, boot=boot, gaps=gaps)  # type: ignore[arg-type]


def seq_of(value: Any) -> int | None:
    """The record's seq if it has a usable one, so that even a bad record is accounted for."""
    if isinstance(value, dict):
        seq = value.get("seq")
        if type(seq) is int and 1 <= seq <= INT64_MAX:
            return seq
    return None


def check_record(value: Any, raw: bytes) -> Record:
    if len(raw) > MAX_RECORD_BYTES:
        raise WireError("record_too_large", f"{len(raw)} bytes > {MAX_RECORD_BYTES}")
    if not isinstance(value, dict):
        raise WireError("record_schema", "record: not a map")
    seq = value.get("seq")
    if not is_int(seq, 1):
        raise WireError("record_schema", f"record.seq: {seq!r:.30} is not an int >= 1")
    kind = value.get("k")
    if kind not in ("r", "d"):
        raise WireError("record_schema", f"record.k: {kind!r:.30} is neither 'r' nor 'd'")
    for key, highest in RECORD_INT_MAX.items():
        if not is_int(value.get(key), 0, highest):
            raise WireError(
                "record_schema", f"record.{key}: {value.get(key)!r:.30} not an int 0-{highest}"
            )
    body = value.get("b")
    if not isinstance(body, dict):
        raise WireError("record_schema", "record.b: not a map")
    check_storable(body)
    scan_for_full_pan(body, raw)
    if kind == "r":
        _check_receipt(body)
    else:
        check_diag(body)
    return Record(
        seq=seq,  # type: ignore[arg-type]
        kind=kind,
        t=value["t"],
        boot=value["boot"],
        up=value["up"],
        body=body,
        raw=raw,
    )


def check_storable(body: dict[str, Any], where: str = "b") -> None:
    """Only text keys and plain values at any depth: what the store and JSON can hold."""
    for key, value in body.items():
        if type(key) is not str:
            raise WireError("record_schema", f"{where}: a {type(key).__name__} key {key!r:.30}")
        _check_storable_value(value, f"{where}.{key[:20]}")


def _check_storable_value(value: Any, where: str) -> None:
    if type(value) is dict:
        check_storable(value, where)
    elif type(value) is list:
        for item in value:
            _check_storable_value(item, where)
    elif not isinstance(value, _STORABLE_LEAF):
        raise WireError("record_schema", f"{where}: {value!r:.30} cannot be stored")


# The contract's character classes as patterns (ASCII only: `\d` would take any Unicode digit).
_CLASS_PATTERN = {
    contract.DIGITS: "[0-9]{{{n}}}",
    contract.ALNUM: "[0-9A-Za-z]{{{n}}}",
    contract.MMDD: "(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])",
    contract.CURRENCY: "[A-Z]{{{n}}}|[0-9]{{{n}}}",
}
RECEIPT_TEXT = {
    key: re.compile(_CLASS_PATTERN[cls].format(n=length))
    for key, (length, cls) in contract.RECEIPT_TEXT.items()
}
RECEIPT_TEXT[contract.MASKED_PAN_KEY] = re.compile(r"[0-9]{6}\*{3,9}[0-9]{4}")
# The optional ids (`ord`, `xid`): printable ASCII; checked for card numbers by pan_check.
RECEIPT_ID = {key: re.compile(f"[!-~]{{1,{n}}}") for key, n in contract.RECEIPT_IDS.items()}
RECEIPT_ENUM = {key: frozenset(values) for key, values in contract.RECEIPT_ENUMS.items()}
RECEIPT_INT = contract.RECEIPT_INTS
RECEIPT_REQUIRED = contract.RECEIPT_REQUIRED


# key -> (0, pattern) | (1, allowed values) | (2, highest int): one lookup per body key.
RECEIPT_SPEC: dict[str, tuple[int, Any]] = {
    **{k: (0, v) for k, v in RECEIPT_TEXT.items()},
    **{k: (0, v) for k, v in RECEIPT_ID.items()},
    **{k: (1, v) for k, v in RECEIPT_ENUM.items()},
    **{k: (2, v) for k, v in RECEIPT_INT.items()},
}


def _check_receipt(body: dict[str, Any]) -> None:
    for key in RECEIPT_REQUIRED:
        if key not in body:
            raise WireError("record_schema", f"receipt: `{key}` is missing")
    for key, value in body.items():
        spec = RECEIPT_SPEC.get(key)
        if spec is None:
            continue  # unknown keys are kept and ignored
        kind, rule = spec
        if kind == 0:
            if type(value) is str and rule.fullmatch(value):
                continue
            if key == "pan":
                raise WireError(
                    "pan_unmasked",
                    "receipt.pan: not a masked PAN (value withheld)",
                    tuple(DIGIT_RUN.findall(value)) if isinstance(value, str) else (),
                )
            raise WireError("record_schema", f"receipt.{key}: {value!r:.30} is malformed")
        if kind == 1:
            if type(value) is str and value in rule:
                continue
            raise WireError("record_schema", f"receipt.{key}: {value!r:.30} is not allowed")
        if not is_int(value, 0, rule):
            raise WireError("record_schema", f"receipt.{key}: {value!r:.30} is not an int")


_DIAG_ENUM = {key: frozenset(values) for key, values in contract.DIAG_ENUMS.items()}
_DIAG_UINT = frozenset(contract.DIAG_COUNTS)
_DIAG_INT = frozenset(contract.DIAG_READINGS)
_DIAG_TEXT = frozenset(contract.DIAG_TEXTS)
_EV = re.compile(r"[a-z][a-z0-9_]{0,31}")


def check_diag(body: dict[str, Any]) -> None:
    ev = body.get("ev")
    if not isinstance(ev, str) or not _EV.fullmatch(ev):
        raise WireError("record_schema", f"diag.ev: {ev!r:.30} is not an event name")
    for key, value in body.items():
        allowed = _DIAG_ENUM.get(key)
        if allowed is not None:
            ok = isinstance(value, str) and value in allowed
        elif key in _DIAG_UINT:
            ok = is_int(value)
        elif key in _DIAG_INT:
            ok = is_int(value, -(2**31), 2**31)
        elif key in _DIAG_TEXT:
            ok = isinstance(value, str) and len(value) <= contract.MAX_DIAG_TEXT
        elif key == "reg":
            ok = is_int(value) and value in contract.REGISTRATION_STATES
        elif key == "cell":
            ok = isinstance(value, str) or is_int(value)
        else:
            continue
        if not ok:
            raise WireError("record_schema", f"diag.{key}: {value!r:.30} is not allowed")
    if ev == "lost" and not (
        is_int(body.get("from"), 1) and is_int(body.get("to"), 1) and body["from"] <= body["to"]
    ):
        raise WireError("record_schema", "diag lost: needs from <= to, both >= 1")


_HB_INT = contract.HEARTBEAT_INTS


@dataclass(frozen=True)
class Heartbeat:
    body: dict[str, Any]

    def int_field(self, key: str) -> int | None:
        value = self.body.get(key)
        return value if type(value) is int else None

    def text_field(self, key: str) -> str | None:
        value = self.body.get(key)
        return value if isinstance(value, str) else None


def check_heartbeat(value: Any, topic_dev: str) -> Heartbeat:
    if not isinstance(value, dict):
        raise WireError("hb_schema", "heartbeat: not a map")
    if value.get("v") != 1 or type(value.get("v")) is not int:
        raise WireError("version", f"heartbeat v={value.get('v')!r:.20}")
    if value.get("dev") != topic_dev:
        raise WireError("dev_mismatch", f"heartbeat.dev {value.get('dev')!r:.40}")
    for key in _HB_INT:
        if key in value and not is_int(value[key], -INT64_MAX, INT64_MAX):
            raise WireError("hb_schema", f"heartbeat.{key}: {value[key]!r:.30} is not an int")
    for key in contract.HEARTBEAT_TEXTS:
        if key in value and not (isinstance(value[key], str) and len(value[key]) <= 64):
            raise WireError("hb_schema", f"heartbeat.{key}: not a short text")
    if "link" in value and value["link"] not in contract.HEARTBEAT_LINK:
        raise WireError("hb_schema", f"heartbeat.link: {value['link']!r:.20}")
    sig = value.get("sig", {})
    if sig is not None and not (isinstance(sig, dict) and all(map(_sig_item_ok, sig.items()))):
        raise WireError("hb_schema", "heartbeat.sig: not a map of numbers and texts")
    check_no_full_pan(value)
    return Heartbeat(body=value)


def _sig_item_ok(item: tuple[Any, Any]) -> bool:
    key, value = item
    return isinstance(key, str) and (
        value is None or is_int(value, -(2**31), 2**31) or isinstance(value, str)
    )


def check_dev(dev: str) -> None:
    if not DEV_PATTERN.fullmatch(dev):
        raise WireError("topic", f"device id {dev[:40]!r} is not [A-Za-z0-9_-]{{4,32}}")
