# The CBOR codec under MicroPython: reused buffers, bounds, and errors on malformed input.
# (Agreement with cbor2 is the property test in test_cbor_property.py.)
from dzcore import cbor
from mptest import check, equal, raises


def test_encode_into_reuses_the_callers_buffer_and_returns_the_end():
    buf = bytearray(32)
    end = cbor.encode_into({"upto": 1000}, buf)
    equal(bytes(buf[:end]), b"\xa1\x64upto\x19\x03\xe8", "encoding")
    end2 = cbor.encode_into([1, -1], buf, end)
    equal(bytes(buf[end:end2]), b"\x82\x01\x20", "appended encoding")


def test_encode_into_a_short_buffer_raises_and_writes_nothing_past_it():
    buf = bytearray(8)
    view = memoryview(buf)[:4]
    raises(cbor.BufferTooSmall, cbor.encode_into, "longer than four", view)
    equal(bytes(buf[4:]), b"\x00" * 4, "bytes past the view")


def test_heads_use_the_shortest_form_at_every_boundary():
    cases = [
        (23, "17"),
        (24, "1818"),
        (255, "18ff"),
        (256, "190100"),
        (65536, "1a00010000"),
        (2**32, "1b0000000100000000"),
        (2**64 - 1, "1bffffffffffffffff"),
        (-1, "20"),
        (-(2**64), "3bffffffffffffffff"),
    ]
    for value, hexed in cases:
        equal(cbor.encode(value).hex(), hexed, "encoding of %d" % value)
        equal(cbor.decode(bytes.fromhex(hexed)), value, "decoding of %s" % hexed)


def test_values_outside_the_subset_are_refused():
    raises(cbor.CBORError, cbor.encode, 2**64)
    raises(cbor.CBORError, cbor.encode, -(2**64) - 1)
    raises(cbor.CBORError, cbor.encode, {1, 2})
    deep = []
    for _ in range(20):
        deep = [deep]
    raises(cbor.CBORError, cbor.encode, deep)


def test_large_values_grow_the_scratch_buffer():
    body = {"blob": b"x" * 3000, "text": "到账" * 100}
    equal(cbor.decode(cbor.encode(body)), body, "round trip")


def test_malformed_input_raises_cbor_error():
    bad = [
        b"",  # nothing
        b"\x18",  # argument missing
        b"\x5a\xff\xff\xff\xff",  # byte string longer than the buffer
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # array count beyond the buffer
        b"\x9f\x01\xff",  # indefinite length
        b"\xc1\x00",  # tag
        b"\x62\xff\xfe",  # text that is not UTF-8
        b"\xa2\x01\x01\x01\x02",  # duplicate key
        b"\xa1\x80\x01",  # array as map key
        b"\x01\x02",  # trailing byte
        b"\xf8\x20",  # simple value outside the subset
        b"\x81" * 9 + b"\x01",  # nesting deeper than 8
    ]
    for raw in bad:
        raises(cbor.CBORError, cbor.decode, raw)


def test_depth_eight_is_accepted():
    raw = b"\x81" * 8 + b"\x01"
    value = cbor.decode(raw)
    for _ in range(8):
        check(isinstance(value, list), "a list at each level")
        value = value[0]
    equal(value, 1, "innermost value")


def test_floats_of_every_width_decode():
    equal(cbor.decode(b"\xf9\x3e\x00"), 1.5, "float16")
    equal(cbor.decode(b"\xf9\x00\x01"), 2.0**-24, "float16 subnormal")
    equal(cbor.decode(b"\xfa\x3f\xc0\x00\x00"), 1.5, "float32")
    equal(cbor.encode(1.5), b"\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00", "float64")
