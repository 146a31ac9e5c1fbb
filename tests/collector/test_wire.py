"""Batch decoding keeps each record's exact bytes; acks are the contract's map."""

from __future__ import annotations

import cbor2
import pytest
from daozhang.collector.wire import WireError, decode_batch, encode_ack, parse_topic, split_mac
from daozhang.lab.devicewire import batch_bytes, record_bytes
from hypothesis import given
from hypothesis import strategies as st

_values = st.recursive(
    st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.lists(st.dictionaries(st.text(max_size=6), _values, max_size=4), max_size=6))
def test_record_bytes_are_sliced_exactly(bodies: list[dict[str, object]]) -> None:
    recs = [record_bytes(i + 1, "d", body) for i, body in enumerate(bodies)]
    batch = decode_batch(batch_bytes("T0001", 5, recs, gaps=[[9, 9]]))
    assert [r.raw for r in batch.recs] == recs
    assert [r.value for r in batch.recs] == [cbor2.loads(r) for r in recs]
    assert batch.fields == {"v": 1, "dev": "T0001", "epoch": 5, "boot": 1, "gaps": [[9, 9]]}


def test_mac_is_checked_on_the_raw_bytes() -> None:
    key = b"k" * 32
    signed = batch_bytes("T0001", 1, [], key=key)
    assert split_mac(signed, key) == batch_bytes("T0001", 1, [])
    tampered = bytes([signed[0] ^ 1]) + signed[1:]
    with pytest.raises(WireError, match="mac"):
        split_mac(tampered, key)


@pytest.mark.parametrize("topic", ["dz/v1/ab/up", "dz/v2/T0001/up", "dz/v1/T 01/up", "x"])
def test_bad_topics(topic: str) -> None:
    with pytest.raises(WireError, match="topic"):
        parse_topic(topic)


def test_ack_payload() -> None:
    assert cbor2.loads(encode_ack(7, 42, 1_780_000_000.9)) == {
        "v": 1,
        "epoch": 7,
        "upto": 42,
        "now": 1_780_000_000,
    }
