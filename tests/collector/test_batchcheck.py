"""The batch fast path says yes only where the record-by-record checks say yes, with the same
records; and it does say yes to ordinary batches (else it would be a slow path in disguise)."""

from __future__ import annotations

import random
from typing import Any

import cbor2
import pytest
from daozhang.collector.validate import check_record
from daozhang.collector.verify import check_batch
from daozhang.collector.wire import RawRecord, WireError, decode_batch
from daozhang.lab.devicewire import batch_bytes, receipt_body, record_bytes

FULL_PAN = "4111111111111111"  # Luhn-valid


def recs_of(records: list[bytes]) -> list[RawRecord]:
    return decode_batch(batch_bytes("DEV0001", 1, records)).recs


def diag(seq: int, **body: Any) -> bytes:
    return record_bytes(seq, "d", {"ev": "link_down", "stage": "tcp", "why": "timeout", **body})


def per_record(recs: list[RawRecord]) -> list[Any] | None:
    """What the record-by-record path accepts: every record, or None if any one fails."""
    try:
        checked = [check_record(r.value, r.raw) for r in recs]
    except WireError:
        return None
    seqs = [r.seq for r in checked]
    return checked if len(set(seqs)) == len(seqs) else None


def test_an_ordinary_batch_takes_the_fast_path_with_the_same_records() -> None:
    records = [record_bytes(s, "r", receipt_body(s), t=1_780_000_000 + s) for s in range(1, 40)]
    records += [diag(40), record_bytes(41, "r", receipt_body(41, ch="qr", sm="D0"), t=0, up=9)]
    recs = recs_of(records)
    fast = check_batch(recs)
    assert fast is not None
    assert fast == per_record(recs)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"note": f"card {FULL_PAN}"}, "full PAN in an unknown key"),
        ({"trc": "000001\n000002"}, "a newline posing as two values"),
        ({"amt": True}, "a bool amount"),
        ({"st": "paid"}, "an unknown state"),
        ({"pan": FULL_PAN}, "an unmasked PAN"),
        ({"rrn": None}, "a null RRN"),
    ],
)
def test_one_bad_receipt_sends_the_batch_to_the_slow_path(body: dict[str, Any], why: str) -> None:
    good = [record_bytes(s, "r", receipt_body(s), t=5) for s in range(1, 6)]
    bad = record_bytes(6, "r", {**receipt_body(6), **body}, t=5)
    recs = recs_of([*good, bad])
    assert per_record(recs) is None, why
    assert check_batch(recs) is None, why


def test_a_repeated_seq_and_a_missing_key_go_to_the_slow_path() -> None:
    twice = [record_bytes(3, "r", receipt_body(1), t=5), record_bytes(3, "r", receipt_body(2), t=5)]
    assert check_batch(recs_of(twice)) is None
    body = receipt_body(1)
    del body["st"]
    assert check_batch(recs_of([record_bytes(1, "r", body, t=5)])) is None


_ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    1.5,
    "",
    "x" * 600,
    "000001\n000002",
    FULL_PAN,
    "898310048161234",
    "ABC",
    "D",
    "sale",
    "approved",
    "000001",
    "0000000000001",
    [1],
    {"a": FULL_PAN},
    b"4111111111111111",
    "\u0661\u0662\u0663\u0664\u0665\u0666",  # Arabic-Indic digits: \d matches them in str
]
_BODY_KEYS = [*receipt_body(1), "ch", "sm", "rv", "sd", "otrc", "orrn", "lt", "note", "mid"]
_TOP_KEYS = ["seq", "k", "t", "boot", "up", "b"]


def _mutated_batch(rng: random.Random) -> list[bytes]:
    n = rng.randint(1, 12)
    values: list[dict[str, Any]] = []
    for s in range(1, n + 1):
        if rng.random() < 0.2:
            values.append(
                {"seq": s, "k": "d", "t": 7, "boot": 1, "up": s, "b": {"ev": "signal", "rssi": -70}}
            )
        else:
            values.append({"seq": s, "k": "r", "t": 7, "boot": 1, "up": s, "b": receipt_body(s)})
    for _ in range(rng.randint(0, 2)):
        value = rng.choice(values)
        if rng.random() < 0.3:
            key = rng.choice(_TOP_KEYS)
            target = value
        else:
            key = rng.choice(_BODY_KEYS)
            target = value["b"] if isinstance(value["b"], dict) else value
        if rng.random() < 0.15:
            target.pop(key, None)
        else:
            target[key] = rng.choice(_ODD_VALUES)
    return [cbor2.dumps(v) for v in values]


def test_random_mutations_never_pass_the_fast_path_alone() -> None:
    rng = random.Random(20261203)
    fast_yes = 0
    for case in range(4000):
        recs = recs_of(_mutated_batch(rng))
        fast = check_batch(recs)
        slow = per_record(recs)
        if fast is not None:
            fast_yes += 1
            assert fast == slow, f"case {case}: the fast path accepted what the slow one refuses"
    # Unmutated batches are about a fifth of the cases: the fast path must take them.
    assert fast_yes > 400
