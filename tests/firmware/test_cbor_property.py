"""Property tests: the firmware's CBOR codec (run by the real MicroPython) agrees with cbor2.

Each hypothesis example is a batch of values sent to one interpreter run (see cbor_oracle.py),
so hundreds of values are checked in a few seconds.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import cbor2
from daozhang.lab.mp.run import run_micropython
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ORACLE = Path(__file__).with_name("cbor_oracle.py")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.sampled_from([0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -24, -25, -257])
    | st.binary(max_size=300)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
    | st.floats(allow_nan=False)
)
keys = st.text(max_size=8) | st.integers(min_value=-1000, max_value=2**40)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=20,
)


def expr(value: Any) -> str:
    """A MicroPython expression that builds `value` without going through CBOR."""
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        return f"F('{struct.pack('>d', value).hex()}')"
    if isinstance(value, bytes):
        return f"B('{value.hex()}')"
    if isinstance(value, str):
        return f"S('{value.encode().hex()}')"
    if isinstance(value, list):
        return "[" + ",".join(expr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{expr(k)}:{expr(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def run_oracle(lines: list[str]) -> list[str]:
    result = run_micropython(
        [str(ORACLE)], extra_path=[ORACLE.parent], stdin="\n".join(lines).encode() + b"\n"
    )
    out = result.stdout.decode().splitlines()
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert len(out) == len(lines), out
    return out


def has_map(value: Any) -> bool:
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and any(has_map(v) for v in value)


def same(a: Any, b: Any) -> bool:
    """Equality that also tells 1 from 1.0 from True, and -0.0 from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)  # random bytes may hold a NaN
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=1, max_size=80))
def test_micropython_encoding_decodes_with_cbor2_to_the_same_values(batch: list[Any]) -> None:
    requests = [f"E {expr(v)}" for v in batch]
    # The decoder too: cbor2's encoding of each value, decoded and re-encoded on the device.
    requests += [f"D {cbor2.dumps(v).hex()}" for v in batch]
    answers = run_oracle(requests)
    for value, encoded, round_trip in zip(batch, answers, answers[len(batch) :], strict=False):
        data = bytes.fromhex(encoded)
        assert same(cbor2.loads(data), value), (value, encoded)
        assert same(cbor2.loads(bytes.fromhex(round_trip)), value), (value, round_trip)
        if not has_map(value):
            # Shortest heads, float64, definite lengths: byte for byte what cbor2 writes.
            assert data == cbor2.dumps(value), (value, encoded)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=120))
def test_malformed_input_raises_cbor_error_and_nothing_else(batch: list[bytes]) -> None:
    answers = run_oracle([f"D {raw.hex()}" for raw in batch])
    for raw, answer in zip(batch, answers, strict=True):
        if answer.startswith("ERR"):
            continue
        # Whatever the device accepts, cbor2 reads as the same value.
        assert same(cbor2.loads(bytes.fromhex(answer)), cbor2.loads(raw)), (raw, answer)


def test_special_floats_are_encoded_as_cbor2_does() -> None:
    # Found by hypothesis once: infinities went out as float64 where cbor2 writes half floats.
    specials = [float("inf"), float("-inf"), float("nan"), -0.0, 1.5]
    answers = run_oracle([f"E {expr(v)}" for v in specials])
    for value, encoded in zip(specials, answers, strict=True):
        assert bytes.fromhex(encoded) == cbor2.dumps(value), (value, encoded)
